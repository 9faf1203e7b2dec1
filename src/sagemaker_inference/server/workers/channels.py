"""Inside a worker process: the streams and sessions it runs beside its plain batches.

Theory. Plain batches run on the worker's main thread, one at a time, in order (see
``process.py``). Anything that lasts (a streamed response body, a bidirectional session) runs in
a thread of its own, a *channel*, so it never holds the main loop: a stream waiting for its
client or a session waiting for its next message costs a blocked thread, nothing else.

* The thread that drives a generator owns it: it calls ``next()`` and, when the channel ends for
  any reason, ``close()`` (a generator cannot be closed from another thread while it runs). So
  ``GeneratorExit`` reaches the handler as soon as it next yields, or at once if it is waiting.
* Credit, not queues: a channel thread sends a message only while it holds credit, and takes one
  per message; the frontend grants credit back as its client consumes (see ``protocol.py``). At
  zero it blocks *before* calling ``next()``, so a slow reader stops the generator itself and no
  side buffers more than the window.
* Inbound session messages wait in the channel's inbox until the handler takes them; each one
  taken is credited back to the frontend, which therefore never has more than the window in
  flight to us.
* The frontend ending a channel (client gone, closed, timed out) ends it here: the thread stops
  at its next step, closes the generator, and sends nothing more.
* Writes to the socket come from several threads, whole frames under one lock (``Outbox``).

Python threads share the GIL: a channel waiting on I/O costs nothing, one computing in Python
slows the others (numpy, torch and most native code release it). ``docs/streaming.md`` says so.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, Callable

from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.streaming import is_stream

__all__ = ["Channels", "Outbox", "is_stream"]

logger = logging.getLogger("sagemaker_inference.server.worker")

MAX_CHANNELS = 1024  # per worker; a safety net, the frontend's session cap is the real limit
_REASON_LIMIT = 120  # a WebSocket close reason must fit in a control frame (123 bytes)


class Outbox:
    """The worker's end of the socket: whole frames, written under one lock by any thread."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, data: bytes) -> None:
        with self._lock:
            self._sock.sendall(data)


def chunk_bytes(item: Any) -> bytes:
    """A streamed body's chunk: ``bytes`` as is, ``str`` as UTF-8; anything else is a handler bug."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"a streamed body yielded {type(item).__name__}; yield bytes or str")


def message_frame(item: Any) -> tuple[bytes, bool]:
    """A session's outgoing message: ``str`` is a text message, bytes-like a binary one."""
    if isinstance(item, str):
        return item.encode("utf-8"), False
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item), True
    raise TypeError(f"bidirectional_stream_fn yielded {type(item).__name__}; yield str or bytes")


def short_reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = text.splitlines()[0] if text else "error"
    return text if len(text.encode()) <= _REASON_LIMIT else text.encode()[:_REASON_LIMIT].decode("utf-8", "ignore")


class Channel:
    """One stream or session: credit to send, the inbox of a session, whether it has ended."""

    __slots__ = ("channel_id", "credit", "inbox", "ended", "input_done", "_cond")

    def __init__(self, channel_id: int, credit: int):
        self.channel_id, self.credit = channel_id, credit
        self.inbox: deque[tuple[bytes, bool]] = deque()
        self.ended = False  # the frontend ended it: send nothing more
        self.input_done = False  # no more inbound messages
        self._cond = threading.Condition()

    def take_credit(self) -> bool:
        """Block until one message may be sent; False once the channel has ended."""
        with self._cond:
            while self.credit <= 0 and not self.ended:
                self._cond.wait()
            if self.ended:
                return False
            self.credit -= 1
            return True

    def grant(self, credit: int) -> None:
        with self._cond:
            self.credit += credit
            self._cond.notify_all()

    def push(self, data: bytes, binary: bool) -> None:
        with self._cond:
            self.inbox.append((data, binary))
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self.ended = self.input_done = True
            self._cond.notify_all()

    def next_message(self) -> tuple[bytes, bool] | None:
        """The next inbound message, waiting for it; None when input is over."""
        with self._cond:
            while not self.inbox and not self.input_done:
                self._cond.wait()
            return self.inbox.popleft() if self.inbox else None


class Channels:
    """The worker's channels by id. Thread-safe; ``on_message`` takes the frontend's messages."""

    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self._channels: dict[int, Channel] = {}
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: list[tuple[Channel, Iterator[Any], str]] = []
        self.used = False  # set by the first channel: the main loop then hands reading to a thread

    def __len__(self) -> int:
        return len(self._channels)

    # -- response streams ----------------------------------------------------------------------

    def new_stream(self, body: Iterator[Any], request_id: str) -> int:
        """Register a streamed body; 0 when the worker has too many channels. Its thread starts
        with ``start_pending``, after the reply that carries its head has been sent."""
        with self._lock:
            if len(self._channels) >= MAX_CHANNELS:
                return 0
            self._next_id += 1
            channel = Channel(p.WORKER_CHANNEL_BIT | self._next_id, p.STREAM_WINDOW)
            self._channels[channel.channel_id] = channel
        self._pending.append((channel, body, request_id))
        self.used = True
        return channel.channel_id

    def discard_pending(self) -> None:
        """The reply carrying these streams' heads was never sent: forget them."""
        for channel, body, _ in self._pending:
            self._forget(channel)
            _close(body, "")
        self._pending.clear()

    def start_pending(self) -> None:
        for channel, body, request_id in self._pending:
            _start(self._run_stream, channel, body, request_id)
        self._pending.clear()

    def _run_stream(self, channel: Channel, body: Iterator[Any], request_id: str) -> None:
        self._drive(channel, body, request_id, lambda item: (chunk_bytes(item), True), skip_empty=True)

    # -- bidirectional sessions ----------------------------------------------------------------

    def open_session(self, message: p.ChannelOpen, start: Callable[[Iterator[str | bytes]], Any]) -> None:
        """Run ``start(messages)`` (the model's session function) in a thread of its own."""
        channel = Channel(message.channel, p.SESSION_WINDOW)
        with self._lock:
            if len(self._channels) >= MAX_CHANNELS or message.channel in self._channels:
                self.outbox.send(p.encode(p.ChannelEnd(message.channel, 1013, "worker has too many sessions")))
                return
            self._channels[channel.channel_id] = channel
        self.used = True
        _start(self._run_session, channel, start, message.request.request_id.decode())

    def _run_session(self, channel: Channel, start: Callable[[Iterator[str | bytes]], Any], request_id: str) -> None:
        try:
            outputs = start(self._incoming(channel))
        except Exception as exc:
            logger.error("session %s (request %s) failed to start", channel.channel_id, request_id, exc_info=True)
            self._finish(channel, p.CLOSE_ERROR, short_reason(exc))
            return
        if outputs is None:
            self._finish(channel, p.CLOSE_NORMAL, "")
            return
        self._drive(channel, iter(outputs), request_id, message_frame, skip_empty=False)

    def _incoming(self, channel: Channel) -> Iterator[str | bytes]:
        """What the handler sees as ``messages``: each whole message, credited back once taken."""
        while True:
            message = channel.next_message()
            if message is None:
                return
            data, binary = message
            if not channel.ended:
                self.outbox.send(p.encode(p.ChannelCredit(channel.channel_id, 1)))
            yield data if binary else data.decode("utf-8")

    # -- common ----------------------------------------------------------------------------------

    def _drive(self, channel: Channel, body: Iterator[Any], request_id: str,
               frame: Callable[[Any], tuple[bytes, bool]], skip_empty: bool) -> None:
        """Send what ``body`` yields while credit lasts; end the channel as the body ends."""
        sent = 0
        try:
            while channel.take_credit():
                try:
                    item = next(body)
                except StopIteration:
                    self._finish(channel, p.CLOSE_NORMAL, "")
                    return
                data, binary = frame(item)
                if skip_empty and not data:
                    channel.grant(1)  # an empty chunk would end a chunked body: send nothing
                    continue
                self.outbox.send(p.encode_channel_data(channel.channel_id, data, binary))
                sent += 1
        except Exception as exc:
            logger.error("request %s: the stream failed after %d messages", request_id, sent, exc_info=True)
            self._finish(channel, p.CLOSE_ERROR, short_reason(exc))
        finally:
            _close(body, request_id)
            self._forget(channel)

    def _finish(self, channel: Channel, code: int, reason: str) -> None:
        if not channel.ended:
            channel.ended = True
            self.outbox.send(p.encode(p.ChannelEnd(channel.channel_id, code, reason)))
        self._forget(channel)

    def _forget(self, channel: Channel) -> None:
        with self._lock:
            self._channels.pop(channel.channel_id, None)

    def on_message(self, message: p.Message) -> None:
        """Credit, data or end from the frontend. Unknown channels are ones that just ended."""
        channel = self._channels.get(getattr(message, "channel", -1))
        if channel is None:
            return
        if isinstance(message, p.ChannelCredit):
            channel.grant(message.credit)
        elif isinstance(message, p.ChannelData):
            channel.push(message.data, message.binary)
        elif isinstance(message, p.ChannelEnd):
            channel.end()


def _start(target: Callable[..., None], *args: Any) -> None:
    threading.Thread(target=target, args=args, name=f"channel-{args[0].channel_id:x}", daemon=True).start()


def _close(body: Any, request_id: str) -> None:
    close = getattr(body, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        logger.error("request %s: closing the stream raised", request_id, exc_info=True)
