"""The frontend's side of a worker's channels: streamed response bodies and bidirectional sessions.

Theory. A channel is named by its id, never by a position: plain batches keep the FIFO rule of
``pool.py``; channels live beside them in ``Worker.channels`` and each has its own rules:

* **credit** (``protocol.py``): the worker may have ``window`` messages out unconsumed. A chunk is
  consumed when the HTTP layer has handed it to a transport that is not paused; a paused transport
  withholds credit until it drains, so a slow reader stops the generator in the worker and neither
  process buffers more than the window (plus the transport's own high-water mark).
* **timeout**: ``response_timeout`` bounds the time to the first chunk and every gap between
  chunks, counted only while the worker holds credit (waiting for a slow client is not the
  model's fault). A stream past it ends abnormally and is cancelled in the worker.
* **the client leaves**: the channel is ended in the worker (``ChannelEnd``), which closes the
  generator in the thread that owns it.
* **the worker dies**: every channel of that worker fails at once: streams end abnormally (or get a
  500 if nothing was sent yet), sessions close with 1011.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Protocol

from sagemaker_inference.server.workers import protocol as p

logger = logging.getLogger("sagemaker_inference.server")


class Worker(Protocol):
    """What a channel needs of its worker (``worker.Worker``; a protocol, so no import cycle)."""

    channels: dict[int, Any]
    sessions: int

    @property
    def label(self) -> str: ...

    def send_frame(self, frame: bytes) -> None: ...


class Counters(Protocol):
    """Where channel outcomes are counted (``observability.counters.ModelCounters``)."""

    def stream_ended(self, outcome: str, chunks: int) -> None: ...

    def session_opened(self) -> None: ...

    def session_ended(self, outcome: str) -> None: ...


class StreamSink(Protocol):
    """Where a streamed body goes (an HTTP exchange). ``start_stream`` gives it the head and the
    stream to credit; chunks follow; ``end_stream`` ends it cleanly (``status`` 0) or not."""

    cancelled: bool

    def start_stream(self, head: p.RenderedResponse, stream: Stream) -> None: ...

    def stream_data(self, data: bytes) -> None: ...

    def end_stream(self, status: int = 0, error_type: str = "", message: str = "") -> None: ...


class SessionPeer(Protocol):
    """The client side of a bidirectional session (a WebSocket connection)."""

    def send_message(self, data: bytes, binary: bool) -> None: ...

    def close(self, code: int, reason: str = "") -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Stream:
    """One streamed response body, from the worker's head to its end."""

    __slots__ = ("worker", "channel", "sink", "worker_credit", "last_activity", "chunks", "ended", "counters")

    def __init__(self, worker: Worker, channel: int, sink: StreamSink, counters: Counters | None = None):
        self.worker, self.channel, self.sink = worker, channel, sink
        self.counters = counters  # told once how the stream ended (metrics); None when metrics are off
        self.worker_credit = p.STREAM_WINDOW
        self.last_activity = time.monotonic()
        self.chunks = 0
        self.ended = False

    # from the worker
    def on_data(self, data: bytes, binary: bool) -> None:
        self.worker_credit -= 1
        self.chunks += 1
        self.last_activity = time.monotonic()
        self.sink.stream_data(data)

    def on_end(self, code: int, reason: str) -> None:
        self._count("completed" if code == p.CLOSE_NORMAL else "failed")
        self._forget()
        if code == p.CLOSE_NORMAL:
            self.sink.end_stream()
        else:
            self.sink.end_stream(500, "InternalServerException", reason or "The stream failed.")

    def on_credit(self, credit: int) -> None:
        pass  # a response stream has no inbound direction

    def on_lost(self) -> None:
        self._count("worker_died")
        self.ended = True
        self.sink.end_stream(500, "InternalServerException", "Worker died.")

    # from the client side
    def consumed(self, chunks: int = 1) -> None:
        """``chunks`` were handed to a writable transport: the worker may produce as many more."""
        if not self.ended:
            self.worker_credit += chunks
            self.last_activity = time.monotonic()
            self.worker.send_frame(p.encode(p.ChannelCredit(self.channel, chunks)))

    def cancel(self) -> None:
        """The client left: stop the generator."""
        if not self.ended:
            self._count("client_gone")
            self._forget()
            self.worker.send_frame(p.encode(p.ChannelEnd(self.channel, p.CLOSE_GOING_AWAY, "client gone")))

    def check_timeout(self, now: float, timeout: float) -> None:
        if self.worker_credit > 0 and now - self.last_activity > timeout:
            logger.error("%s: stream %x sent nothing for %g s; ending it", self.worker.label, self.channel, timeout)
            self._count("timeout")
            self.cancel()
            self.sink.end_stream(504, "TimeoutException", f"The model sent nothing for {timeout:g} seconds.")

    def _forget(self) -> None:
        self.ended = True
        self.worker.channels.pop(self.channel, None)

    def _count(self, outcome: str) -> None:
        counters, self.counters = self.counters, None  # once per stream, by its first ending
        if counters is not None and not self.ended:
            counters.stream_ended(outcome, self.chunks)


class Session:
    """One bidirectional session: messages both ways, with credit both ways."""

    __slots__ = ("worker", "channel", "peer", "credit", "backlog", "ended", "counters")

    def __init__(self, worker: Worker, channel: int, peer: SessionPeer, counters: Counters | None = None):
        self.worker, self.channel, self.peer = worker, channel, peer
        self.counters = counters
        if counters is not None:
            counters.session_opened()
        self.credit = p.SESSION_WINDOW  # messages we may send the worker before it takes some
        self.backlog: deque[tuple[bytes, bool]] = deque()
        self.ended = False

    # from the worker
    def on_data(self, data: bytes, binary: bool) -> None:
        self.peer.send_message(data, binary)

    def on_credit(self, credit: int) -> None:
        self.credit += credit
        while self.backlog and self.credit > 0:
            self._forward(*self.backlog.popleft())
        if not self.backlog:
            self.peer.resume_reading()

    def on_end(self, code: int, reason: str) -> None:
        self._count("closed_by_model" if code == p.CLOSE_NORMAL else "failed")
        self._forget()
        self.peer.close(code, reason)

    def on_lost(self) -> None:
        self._count("worker_died")
        self.ended = True
        self.peer.close(p.CLOSE_ERROR, "worker died")

    # from the client
    def client_message(self, data: bytes, binary: bool) -> None:
        if self.ended:
            return
        if self.credit > 0 and not self.backlog:
            self._forward(data, binary)
        else:
            self.backlog.append((data, binary))
            self.peer.pause_reading()

    def consumed(self, messages: int = 1) -> None:
        if not self.ended:
            self.worker.send_frame(p.encode(p.ChannelCredit(self.channel, messages)))

    def client_closed(self, code: int) -> None:
        if not self.ended:
            self._count("closed_by_client")
            self._forget()
            self.worker.send_frame(p.encode(p.ChannelEnd(self.channel, code)))

    def _forward(self, data: bytes, binary: bool) -> None:
        self.credit -= 1
        self.worker.send_frame(p.encode_channel_data(self.channel, data, binary))

    def _forget(self) -> None:
        self.ended = True
        self.worker.channels.pop(self.channel, None)
        self.worker.sessions -= 1

    def _count(self, outcome: str) -> None:
        counters, self.counters = self.counters, None
        if counters is not None and not self.ended:
            counters.session_ended(outcome)
