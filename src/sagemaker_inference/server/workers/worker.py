"""The frontend's handle on one worker process: its socket, its in-flight batches, its channels,
its fate.

Spawned with ``posix_spawn`` (the socket becomes the child's fd 3); every event it sees (a load
answer, a reply, the connection's end, the exit status) is passed to its owner (the model's
``WorkerGroup``, through the ``WorkerOwner`` protocol, so this module does not import the pool),
which decides what happens next. Channel messages go straight to their ``Stream``/``Session``
(``streams.py``). It never decides anything itself.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import signal
import time
from collections import deque
from typing import TYPE_CHECKING, Callable, Protocol, Union, cast

from sagemaker_inference.server.http.response import JSON, error_body, phrase
from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.server.workers.spawn import Spawned, spawn_worker

if TYPE_CHECKING:
    from sagemaker_inference.server.workers.streams import Session, Stream

    Channel = Union[Stream, Session]

logger = logging.getLogger("sagemaker_inference.server")

# A worker that has exited while its socket stays open (a process it forked holds the other end):
# how long replies it wrote before exiting get to arrive before we treat it as dead.
EXIT_GRACE = 0.2


def signal_name(number: int) -> str:
    """``SIGKILL``, ``SIGRTMIN+6``: real-time signals have no ``signal.Signals`` member."""
    try:
        return signal.Signals(number).name
    except ValueError:
        rtmin = getattr(signal, "SIGRTMIN", 0)
        return f"SIGRTMIN+{number - rtmin}" if rtmin and number >= rtmin else f"signal {number}"


def error_response(status: int, error_type: str, message: str) -> p.Response:
    return p.Response(status, phrase(status), [(b"content-type", JSON)], error_body(status, error_type, message))


class Sink(Protocol):
    """Where an inference's response goes (an HTTP exchange); ``cancelled`` if the client left.
    A streamed body goes through the ``StreamSink`` methods (``streams.py``)."""

    cancelled: bool

    def deliver(self, response: p.Response | p.RenderedResponse) -> None: ...

    def start_stream(self, head: p.RenderedResponse, stream: Stream) -> None: ...

    def stream_data(self, data: bytes) -> None: ...

    def end_stream(self, status: int = 0, error_type: str = "", message: str = "") -> None: ...


class ModelSpecLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def model_dir(self) -> str: ...

    @property
    def handler(self) -> str: ...

    @property
    def batch_size(self) -> int: ...


class WorkerOwner(Protocol):
    """What a ``Worker`` needs from its group (``pool.WorkerGroup``) and tells it."""

    children: dict[int, Worker]
    log_level: int
    log_format: str
    gpus: int

    @property
    def spec(self) -> ModelSpecLike: ...

    def on_loaded(self, worker: Worker, message: p.Loaded) -> None: ...

    def on_reply(self, worker: Worker, message: p.Reply | p.BatchFailed) -> None: ...

    def on_session_closed(self, worker: Worker, message: p.SessionClosed) -> None: ...

    def on_stats(self, worker: Worker, message: p.WorkerStats) -> None: ...

    def on_worker_lost(self, worker: Worker, previous: WorkerState) -> None: ...

    def schedule_pump(self) -> None: ...


class Inference:
    """One request waiting for its model. It is also what gets framed for the worker (it has the
    four fields ``protocol.encode_batch`` reads), so no copy is made per request."""

    __slots__ = ("request_id", "headers", "params", "body", "sink", "arrived")

    def __init__(self, request_id: bytes, headers: p.Pairs, params: p.Pairs, body: bytes, sink: Sink,
                 arrived: float):
        self.request_id, self.headers, self.params, self.body = request_id, headers, params, body
        self.sink, self.arrived = sink, arrived


class _CloseSink:
    """Where the answer to a queued close goes: ``done(status, message)``."""

    __slots__ = ("done",)
    cancelled = False

    def __init__(self, done: Callable[[int, str], None]):
        self.done = done

    def deliver(self, response: p.Response | p.RenderedResponse) -> None:
        self.done(response.status, "")


class PendingClose:
    """A stateful session's close, queued behind the session's requests in ``Worker.pinned`` so the
    close hook runs after them (it is sent in their order, and the worker runs both in order)."""

    __slots__ = ("session_id", "sink", "arrived")

    def __init__(self, session_id: str, done: Callable[[int, str], None], arrived: float):
        self.session_id, self.sink, self.arrived = session_id, _CloseSink(done), arrived


class _InFlight:
    __slots__ = ("batch_id", "items")

    def __init__(self, batch_id: int, items: list[Inference]):
        self.batch_id, self.items = batch_id, items


class WorkerState(enum.Enum):
    STARTING = "STARTING"
    READY = "READY"
    STOPPING = "STOPPING"
    DEAD = "DEAD"


class Worker(asyncio.Protocol):
    """One worker process, seen from the frontend: its socket, its in-flight batches."""

    def __init__(self, group: WorkerOwner, index: int):
        self.group, self.index = group, index
        self.state = WorkerState.STARTING
        self.pid = 0
        self.started_at = time.time()
        self.inflight: deque[_InFlight] = deque()
        self.head_started = 0.0
        self.outbox: list[bytes] = []
        self.timed_out = False
        self.reaped = False  # its pid is collected: never signal it again (it may be reused)
        self.killed = False  # we sent SIGKILL: its end is ours, not news
        self.capabilities = 0
        self.channels: dict[int, Channel] = {}
        self.sessions = 0  # open bidirectional sessions (channels opened by us)
        self.sticky_sessions = 0  # stateful sessions pinned here (``sessions.py``)
        self.pinned: deque[Inference | PendingClose] = deque()  # stateful sessions' requests and closes
        self._reader = p.FrameReader()
        self._transport: asyncio.Transport | None = None
        self._next_batch_id = 0
        self.rss_bytes = 0  # from the worker's last WorkerStats
        self.cpu_seconds = 0.0
        self._stats_waiter: asyncio.Future[None] | None = None
        self._flush_scheduled = False

    @property
    def label(self) -> str:
        return f"model {self.group.spec.name!r} worker {self.index} (pid {self.pid})"

    # -- lifecycle ------------------------------------------------------------------------------

    async def spawn(self, python: str, env: dict[str, str]) -> None:
        spec = self.group.spec
        await self.adopt(spawn_worker(python, spec.name, self.group.log_level, env, handler=spec.handler,
                                      model_dir=spec.model_dir, log_format=self.group.log_format))

    async def adopt(self, spawned: Spawned) -> None:
        """Take over a started process (``spawn`` or the server's early start-up); send ``Load``."""
        self.pid = spawned.pid
        self.group.children[self.pid] = self
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, sock=spawned.sock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        spec = self.group.spec
        gpu = self.index % self.group.gpus if self.group.gpus else -1
        self._transport.write(p.encode(p.Load(spec.name, spec.model_dir, spec.handler, spec.batch_size, gpu)))

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._reader.feed(data)
        except p.ProtocolError as exc:
            logger.error("%s sent an invalid message (%s); replacing it", self.label, exc)
            self.kill()
            return
        for message in messages:
            if isinstance(message, (p.Reply, p.BatchFailed)):
                self.group.on_reply(self, message)
            elif isinstance(message, p.WorkerStats):
                self.group.on_stats(self, message)
                self._settle_stats()
            elif isinstance(message, p.ChannelData):
                channel = self.channels.get(message.channel)
                if channel is not None:
                    channel.on_data(message.data, message.binary)
            elif isinstance(message, (p.ChannelCredit, p.ChannelEnd)):
                self._on_channel_control(message)
            elif isinstance(message, p.Loaded):
                self.capabilities = message.capabilities
                self.group.on_loaded(self, message)
            elif isinstance(message, p.SessionClosed):
                self.group.on_session_closed(self, message)
        self.group.schedule_pump()

    def _on_channel_control(self, message: p.ChannelCredit | p.ChannelEnd) -> None:
        channel = self.channels.get(message.channel)
        if channel is None:
            return  # ended on our side already
        if isinstance(message, p.ChannelCredit):
            channel.on_credit(message.credit)
        else:
            channel.on_end(message.code, message.reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._settle_stats()
        previous, self.state = self.state, WorkerState.DEAD
        channels, self.channels = list(self.channels.values()), {}
        for channel in channels:
            channel.on_lost()
        self.group.on_worker_lost(self, previous)

    def request_stats(self) -> asyncio.Future[None]:
        """Send ``StatsRequest`` (unless one is unanswered); the future is done at the answer."""
        waiter = self._stats_waiter
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            if self._transport is not None:
                self._stats_waiter = waiter
                self._transport.write(p.encode(p.StatsRequest()))
            else:
                waiter.set_result(None)
        return waiter

    def _settle_stats(self) -> None:
        waiter, self._stats_waiter = self._stats_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(self, items: list[Inference]) -> None:
        self._next_batch_id += 1
        if not self.inflight:
            self.head_started = time.monotonic()
        self.inflight.append(_InFlight(self._next_batch_id, items))
        self.outbox.append(p.encode_batch(self._next_batch_id, items))

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._transport is not None and self.outbox:
            data = self.outbox[0] if len(self.outbox) == 1 else b"".join(self.outbox)
            self._transport.write(data)
        self.outbox.clear()

    def send_frame(self, frame: bytes) -> None:
        """Queue a frame (channel credit, data, end ...); everything queued in one loop iteration
        goes out in one write."""
        self.outbox.append(frame)
        if not self._flush_scheduled and self._transport is not None:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def add_channel(self, channel_id: int, channel: Channel) -> None:
        self.channels[channel_id] = channel

    def close(self) -> None:
        """Ask the worker to exit: it sees end-of-file after its current batch."""
        self.state = WorkerState.STOPPING if self.state != WorkerState.DEAD else self.state
        if self._transport is not None:
            self._transport.close()

    def kill(self) -> None:
        self.killed = True
        if self.pid and not self.reaped:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._transport is not None:
            self._transport.abort()

    def poll_exit(self) -> bool:
        """Reap this worker if it has exited; True once it is gone."""
        if self.pid not in self.group.children:
            return True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.group.children.pop(self.pid, None)
            return True
        if pid == 0:
            return False
        self.group.children.pop(self.pid, None)
        self.on_exit(status)
        return True

    def on_exit(self, status: int) -> None:
        """Called by the reaper with the raw wait status.

        Its socket usually ends with it; if not, a process it forked holds the other end and we
        would wait for it forever: after ``EXIT_GRACE`` the connection is cut, which counts as the
        worker's death (its in-flight head fails, it is replaced).
        """
        self.reaped = True
        if os.WIFSIGNALED(status):
            how = f"killed by {signal_name(os.WTERMSIG(status))}"
        else:
            how = f"exit code {os.WEXITSTATUS(status)}"
        expected = self.state == WorkerState.STOPPING or self.killed or how == "exit code 0"
        logger.log(logging.DEBUG if expected else logging.WARNING, "%s ended: %s", self.label, how)
        if self._transport is not None:
            asyncio.get_running_loop().call_later(EXIT_GRACE, self._cut_after_exit)

    def _cut_after_exit(self) -> None:
        if self._transport is not None:
            logger.warning("%s exited but a process it started still holds its socket; treating it as dead",
                           self.label)
            self._transport.abort()
