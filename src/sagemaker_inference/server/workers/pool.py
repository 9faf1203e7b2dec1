"""A model's worker processes, from the frontend: dispatch, time out, restart, scale.

Theory. Each worker runs batches strictly in the order it receives them, so a worker's in-flight
batches form a FIFO whose head is the one running. That gives simple, safe failure rules:

* reply: it answers the head; the next batch becomes the head and its clock starts;
* the worker dies: the head fails (500 ``Worker died.``); the batches behind it never started, so
  they go back to the front of the model queue and another worker runs them;
* the head runs past the response timeout: it fails (504), the worker is killed and replaced,
  the batches behind it are re-queued as above.

Several batches may be in flight per worker (``pipeline``): under load the worker then reads
many frames with one syscall, which is where most of the per-request cost of a process hand-off
goes. The worker writes each batch's reply before it starts the next (``process.py``), which is
what makes "the head is the one running" true. A queued request that finds no worker within the
response timeout is answered 504 rather than waiting forever (MMS waits forever).

Streams and sessions are not batches: they live beside the FIFO, by id, in ``Worker.channels``
(rules in ``streams.py``). A streamed response starts as an ordinary batch (its reply carries
the head) and then holds no place in the FIFO, so it never holds the worker. A worker's death
fails its head batch *and* every channel it had. New work prefers, among idle workers, the one
with the fewest channels.

Stateful sessions (``sessions.py``) pin requests to one worker: they wait in that worker's
``pinned`` queue (never the model's), so they run where the session's state is, or fail with
400 "session lost" when that worker has died; they are never moved to a worker without it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable, cast

from sagemaker_inference.server import batching
from sagemaker_inference.server.sessions import SessionTable, StickySession
from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.server.workers.spawn import Spawned, worker_env
from sagemaker_inference.server.workers.streams import Session, SessionPeer, Stream
from sagemaker_inference.server.workers.worker import Inference, PendingClose, Worker, WorkerState, error_response

if TYPE_CHECKING:
    from sagemaker_inference.server.observability.counters import ModelCounters

logger = logging.getLogger("sagemaker_inference.server")

SWEEP_PERIOD = 0.25
STALL = 0.005  # a batch running longer than this: queue nothing more behind it (see _least_busy)


def restart_delay(failures: int, base: float = 0.1, cap: float = 10.0) -> float:
    """Seconds before restarting after ``failures`` consecutive worker deaths: 0.1, 0.2, 0.4 ... 10
    (the exponent is bounded, so no count of failures overflows a float)."""
    return 0.0 if failures <= 0 else min(cap, base * (2 ** min(failures - 1, 64)))


class ModelSpec:
    """What a group of workers serves; built by the registry from the config or a load request."""

    __slots__ = ("name", "model_dir", "handler", "workers", "batch_size", "max_batch_delay", "response_timeout",
                 "queue_size", "session_expiration", "max_sessions", "max_bidi_sessions")

    def __init__(self, name: str, model_dir: str, handler: str, workers: int, batch_size: int = 1,
                 max_batch_delay: float = 0.1, response_timeout: float = 60.0, queue_size: int = 1000,
                 session_expiration: float = 1200.0, max_sessions: int = 10000, max_bidi_sessions: int = 64):
        self.name, self.model_dir, self.handler, self.workers = name, model_dir, handler, workers
        self.batch_size, self.max_batch_delay = batch_size, max_batch_delay
        self.response_timeout, self.queue_size = response_timeout, queue_size
        self.session_expiration, self.max_sessions = session_expiration, max_sessions
        self.max_bidi_sessions = max_bidi_sessions  # open bidirectional sessions per worker


class WorkerGroup:
    """All the workers of one model, the model's queue, and the dispatch between them."""

    def __init__(self, spec: ModelSpec, *, python: str = "", env: dict[str, str] | None = None,
                 children: dict[int, Worker] | None = None, log_level: int = logging.INFO, gpus: int = 0,
                 on_change: Callable[[WorkerGroup], None] = lambda group: None):
        self.spec = spec
        self.python = python or sys.executable
        self.env = worker_env(os.environ if env is None else env)
        self.children: dict[int, Worker] = {} if children is None else children
        self.on_change = on_change
        self.log_level = log_level
        self.gpus = gpus  # workers get GPU ids round-robin, as MMS assigns them
        self.queue: deque[Inference] = deque()
        self.workers: list[Worker] = []
        self.failures = 0
        self.load_error: str | None = None
        self.load_status = 500
        self.execution_parameters: dict[str, object] = {}
        self.batches_sent = 0  # with requests_sent: the mean batch size achieved (logged at stop)
        self.requests_sent = 0
        self.ever_ready = False
        self.stopping = False
        self.counters: ModelCounters | None = None  # set by the registry when metrics are on
        self.log_format = "text"  # the workers' (the registry sets the server's)
        self._drain_deadline = 0.0
        # Batches in flight per worker. Deep enough that frontend and worker work at the same time
        # under load (32: +50% req/s over 16 on the numeric benchmark); with batching, a second
        # batch waiting in the worker is enough, and the queue here keeps filling the next one.
        self._pipeline = 32 if spec.batch_size == 1 else 2
        self._batch_timer: asyncio.TimerHandle | None = None
        self._pump_scheduled = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._loaded: asyncio.Future[bool] | None = None
        self._scale_waiters: list[tuple[list[Worker], asyncio.Future[bool]]] = []
        self._restarts: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sessions = SessionTable(spec.session_expiration, spec.max_sessions)
        self._pinned = 0  # requests waiting in workers' pinned queues (0: pump skips them)
        self._next_channel = 0
        self._next_call = 0
        self._close_calls: dict[int, tuple[Worker, Callable[[int, str], None]]] = {}

    # -- state ----------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return any(w.state == WorkerState.READY for w in self.workers)

    @property
    def pending(self) -> int:
        """Requests queued or running, plus open streams and sessions (a drain waits for them)."""
        return len(self.queue) + sum(sum(len(b.items) for b in w.inflight) + len(w.channels) + len(w.pinned)
                                     for w in self.workers)

    @property
    def capabilities(self) -> int:
        """What the model's handler can do beyond ``handle`` (``protocol.CAN_*``), once loaded."""
        return next((w.capabilities for w in self.workers if w.state == WorkerState.READY), 0)

    # -- start and stop -------------------------------------------------------------------------

    async def start(self, prespawned: Sequence[Spawned] = ()) -> bool:
        """Start every worker (adopting any ``prespawned``); True once all loaded, False as soon as
        one fails to load."""
        self._loop = asyncio.get_running_loop()
        self._loaded = self._loop.create_future()
        self._sweeper = self._loop.call_later(SWEEP_PERIOD, self._sweep)
        self.workers = [Worker(self, i) for i in range(self.spec.workers)]
        await asyncio.gather(*(w.adopt(prespawned[w.index]) if w.index < len(prespawned)
                               else w.spawn(self.python, self.env) for w in self.workers))
        return await self._loaded

    async def stop(self, drain_timeout: float = 0.0) -> None:
        """Let queued and in-flight requests finish (up to ``drain_timeout``), then end every worker."""
        self._drain_deadline = time.monotonic() + drain_timeout
        while self.pending and time.monotonic() < self._drain_deadline and self.healthy:
            await asyncio.sleep(0.02)
        self.stopping = True
        if self.batches_sent:
            logger.info("model %r served %d requests in %d batches (mean batch size %.2f)", self.spec.name,
                        self.requests_sent, self.batches_sent, self.requests_sent / self.batches_sent)
        for handle in (self._batch_timer, self._sweeper, *self._restarts):
            if handle is not None:
                handle.cancel()
        self._restarts.clear()
        self._settle_scale_waiters(removed=self.workers)
        for item in self.queue:
            item.sink.deliver(error_response(503, "ServiceUnavailableException",
                                             f"Model {self.spec.name} is being stopped."))
        self.queue.clear()
        await self._end(self.workers)
        if self._loaded is not None and not self._loaded.done():
            self._loaded.set_result(False)

    def cut_drain(self) -> None:
        """Stop waiting for queued and in-flight requests: from now on a lost worker fails its batches
        with 503 (not "Worker died.") and is not restarted; ``stop`` answers the queue with 503."""
        self._drain_deadline = 0.0
        self.stopping = True

    async def scale(self, workers: int, drain_timeout: float = 10.0) -> bool:
        """Change the number of workers. Scaling up: True once every new worker has loaded, False
        if one failed (it keeps restarting, as MMS's do). Scaling down: the extra workers leave
        dispatch at once, finish what they hold (up to ``drain_timeout``), then stop."""
        assert self._loop is not None
        current = len(self.workers)
        self.spec.workers = workers
        if workers > current:
            new = [Worker(self, i) for i in range(current, workers)]
            self.workers.extend(new)
            waiter: asyncio.Future[bool] = self._loop.create_future()
            self._scale_waiters.append((new, waiter))
            await asyncio.gather(*(self._start(w) for w in new))
            return await waiter
        extra = self.workers[workers:]
        del self.workers[workers:]
        self._settle_scale_waiters(removed=extra)  # a pending scale-up that wanted them: it is over
        deadline = time.monotonic() + drain_timeout
        while any(w.inflight for w in extra) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self._end(extra)
        self.on_change(self)
        return True

    @staticmethod
    async def _end(workers: list[Worker], grace: float = 5.0) -> None:
        """Close the workers' sockets (each exits after its current batch), reap them, and SIGKILL
        whichever is still there after ``grace`` seconds."""
        for worker in workers:
            worker.close()
        deadline = time.monotonic() + grace
        while not all([w.poll_exit() for w in workers]) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for worker in workers:
            if not worker.poll_exit():
                worker.kill()

    def _settle_scale_waiters(self, failed: Worker | None = None, removed: Sequence[Worker] = ()) -> None:
        """Answer pending scale-ups: True once all their workers are ready, False if one failed to
        start or was closed (the model stopped, a scale-down took it) before it was."""
        for entry in list(self._scale_waiters):
            workers, waiter = entry
            if (failed is not None and failed in workers) or any(w in workers for w in removed):
                result = False
            elif all(w.state == WorkerState.READY for w in workers):
                result = True
            else:
                continue
            self._scale_waiters.remove(entry)
            if not waiter.done():
                waiter.set_result(result)

    def _schedule_restart(self, dead: Worker) -> None:
        """Replace ``dead`` after the back-off, unless by then its slot is gone or holds another
        worker (a scale-down and scale-up in between: restarting then would orphan that one)."""
        assert self._loop is not None
        handle: asyncio.TimerHandle

        def restart() -> None:
            self._restarts.discard(handle)
            index = dead.index
            if self.stopping or index >= len(self.workers) or self.workers[index] is not dead:
                return
            replacement = Worker(self, index)
            self.workers[index] = replacement
            assert self._loop is not None
            self._loop.create_task(self._start(replacement))

        handle = self._loop.call_later(restart_delay(self.failures), restart)
        self._restarts.add(handle)

    async def _start(self, worker: Worker) -> None:
        """Spawn ``worker``; if the spawn itself fails (EMFILE, ENOMEM, the interpreter is gone), the
        slot counts one more failure and is retried after the back-off instead of staying dead."""
        try:
            await worker.spawn(self.python, self.env)
        except OSError as exc:
            worker.state = WorkerState.DEAD
            if self.stopping or worker not in self.workers:
                return
            self.failures += 1
            logger.error("could not start %s: %s; retrying in %.1f s", worker.label, exc,
                         restart_delay(self.failures))
            self._settle_scale_waiters(failed=worker)
            self.on_change(self)
            self._schedule_restart(worker)

    # -- worker events --------------------------------------------------------------------------

    def on_loaded(self, worker: Worker, message: p.Loaded) -> None:
        # The message's first line says what happened; a failure's traceback, or what a success
        # loaded, follows it. Each is logged once per model, not once per worker.
        summary, _, detail = message.message.partition("\n")
        if message.status != 200:
            repeated = summary == self.load_error
            self.load_error, self.load_status = summary, message.status
            logger.log(logging.DEBUG if repeated else logging.ERROR, "model %r failed to load: %s%s", self.spec.name,
                       summary, f"\n{detail}" if detail else "")
            worker.kill()
            return
        if detail and not self.ever_ready:
            logger.info("model %r: %s", self.spec.name, detail)
        worker.state = WorkerState.READY
        worker.started_at = time.time()
        if message.parameters:
            try:
                self.execution_parameters = json.loads(message.parameters)
            except ValueError:
                logger.error("model %r: execution parameters are not JSON; ignored", self.spec.name)
        self.ever_ready = True
        if self._loaded is not None and not self._loaded.done() and all(
                w.state == WorkerState.READY for w in self.workers):
            self._loaded.set_result(True)
        if self._scale_waiters:
            self._settle_scale_waiters()
        self.on_change(self)
        self.pump()

    def on_reply(self, worker: Worker, message: p.Reply | p.BatchFailed) -> None:
        if not worker.inflight or worker.inflight[0].batch_id != message.batch_id:
            logger.error("%s answered an unknown batch %d; replacing it", worker.label, message.batch_id)
            worker.kill()
            return
        batch = worker.inflight.popleft()
        worker.head_started = time.monotonic()
        if isinstance(message, p.Reply):
            for item, response in zip(batch.items, message.responses):
                if response.channel:
                    self._start_stream(worker, item, cast(p.RenderedResponse, response))
                else:
                    item.sink.deliver(response)
            if len(message.responses) != len(batch.items):
                for item in batch.items[len(message.responses):]:
                    item.sink.deliver(error_response(500, "InternalServerException", "Worker sent no response."))
        else:
            failure = error_response(message.status, "InternalServerException", message.message)
            for item in batch.items:
                item.sink.deliver(failure)
        if self.failures and time.time() - worker.started_at > 30:
            self.failures = 0

    def _start_stream(self, worker: Worker, item: Inference, head: p.RenderedResponse) -> None:
        stream = Stream(worker, head.channel, item.sink, self.counters)
        worker.add_channel(head.channel, stream)
        if item.sink.cancelled:
            stream.cancel()  # the client left while the handler ran
        else:
            item.sink.start_stream(head, stream)

    def on_worker_lost(self, worker: Worker, previous: WorkerState) -> None:
        self._fail_sessions_of(worker)
        if self.stopping or previous == WorkerState.STOPPING:
            self._fail_all(worker, 503, "ServiceUnavailableException", "Worker stopped.")
            return
        failed_ids = None  # the requests that failed with the worker, for the log line
        if worker.inflight:
            head = worker.inflight.popleft()
            failed_ids = b",".join([item.request_id for item in head.items]).decode("latin-1")
            if worker.timed_out:
                failure = error_response(504, "TimeoutException",
                                         f"Model {self.spec.name} did not answer within "
                                         f"{self.spec.response_timeout:g} seconds.")
            else:
                failure = error_response(500, "InternalServerException", "Worker died.")
            for item in head.items:
                item.sink.deliver(failure)
            # The batches behind the head never started: run them elsewhere, with a fresh clock,
            # since they already waited for the one that failed.
            now = time.monotonic()
            requeue = [item for batch in worker.inflight for item in batch.items]
            for item in requeue:
                item.arrived = now
            worker.inflight.clear()
            self.queue.extendleft(reversed(requeue))
        if previous == WorkerState.STARTING and self._scale_waiters:
            self._settle_scale_waiters(failed=worker)
        if worker not in self.workers:
            return  # scaled down: nothing to restart
        if previous == WorkerState.STARTING and not self.ever_ready:
            message = self.load_error or "the worker exited while loading the model"
            self.load_error = message
            if self._loaded is not None and not self._loaded.done():
                self._loaded.set_result(False)
            self.on_change(self)
            return
        self.failures += 1
        if self.counters is not None:
            self.counters.restarts += 1
        delay = restart_delay(self.failures)
        log = logger.error if self.failures >= 3 else logger.warning
        log("%s %s; restarting it in %.1f s (%d consecutive failures)%s", worker.label,
            "timed out and was killed" if worker.timed_out else "died", delay, self.failures,
            "; the model is unhealthy while no worker is alive" if not self.healthy else "",
            extra={"model": self.spec.name, "request_id": failed_ids})
        self.on_change(self)
        self._schedule_restart(worker)

    def on_stats(self, worker: Worker, stats: p.WorkerStats) -> None:
        worker.rss_bytes, worker.cpu_seconds = stats.rss_bytes, stats.cpu_seconds
        if self.counters is not None:
            self.counters.add_worker_stats(stats)

    def request_stats(self) -> list[asyncio.Future[None]]:
        """Ask every ready worker for its ``WorkerStats``; futures done when each has answered."""
        return [w.request_stats() for w in self.workers if w.state == WorkerState.READY]

    def _fail_all(self, worker: Worker, status: int, error_type: str, message: str) -> None:
        failure = error_response(status, error_type, message)
        for batch in worker.inflight:
            for item in batch.items:
                item.sink.deliver(failure)
        worker.inflight.clear()

    # -- sessions ---------------------------------------------------------------------------------

    def open_bidi_session(self, peer: SessionPeer, request: p.Request) -> Session | None:
        """Start a bidirectional session on the ready worker with the fewest; None when every
        worker is at ``max_bidi_sessions`` (the caller answers 503)."""
        ready = [w for w in self.workers if w.state == WorkerState.READY and w.sessions < self.spec.max_bidi_sessions]
        if not ready:
            return None
        worker = min(ready, key=lambda w: w.sessions)
        self._next_channel += 1
        session = Session(worker, self._next_channel, peer, self.counters)
        worker.add_channel(session.channel, session)
        worker.sessions += 1
        worker.send_frame(p.encode(p.ChannelOpen(session.channel, request)))
        return session

    def new_sticky_session(self) -> StickySession | None:
        """A stateful session on the ready worker with the fewest; None when there is no ready
        worker or the model has ``max_sessions`` open (the caller answers 503)."""
        ready = [w for w in self.workers if w.state == WorkerState.READY]
        if not ready or self.sessions.full:
            return None
        worker = min(ready, key=lambda w: w.sticky_sessions)
        worker.sticky_sessions += 1
        return self.sessions.create(worker, time.monotonic(), time.time())

    def submit_pinned(self, item: Inference, session: StickySession) -> bool:
        """Queue a session's request for its worker; False when that queue is full."""
        worker = cast(Worker, session.worker)
        if len(worker.pinned) >= self.spec.queue_size:
            return False
        worker.pinned.append(item)
        self._pinned += 1
        self.schedule_pump()
        return True

    def close_sticky_session(self, session: StickySession, done: Callable[[int, str], None]) -> None:
        """Remove the session and run the model's close hook on its worker; ``done(status, message)``
        when it has run (or at once when the model has no hook)."""
        self.sessions.remove(session.session_id)
        cast(Worker, session.worker).sticky_sessions -= 1
        self._call_close(session, done)

    def _call_close(self, session: StickySession, done: Callable[[int, str], None]) -> None:
        worker = cast(Worker, session.worker)
        if not worker.capabilities & p.CAN_CLOSE_SESSION or worker.state != WorkerState.READY:
            done(200, "")
            return
        worker.pinned.append(PendingClose(session.session_id, done, time.monotonic()))
        self._pinned += 1
        self.schedule_pump()

    def on_session_closed(self, worker: Worker, message: p.SessionClosed) -> None:
        entry = self._close_calls.pop(message.call_id, None)
        if entry is not None:
            entry[1](message.status, message.message)

    def _fail_sessions_of(self, worker: Worker) -> None:
        """The worker's state is gone: its stateful sessions are lost, their waiting requests fail."""
        if worker.sticky_sessions:
            self.sessions.worker_lost(worker)
            worker.sticky_sessions = 0
        lost = error_response(400, "BadRequestException",
                              "session lost: the worker that held its state died; start a new session")
        while worker.pinned:
            self._pinned -= 1
            worker.pinned.popleft().sink.deliver(lost)
        for call_id, (owner, done) in list(self._close_calls.items()):
            if owner is worker:
                del self._close_calls[call_id]
                done(400, "session lost")

    # -- dispatch -------------------------------------------------------------------------------

    def submit(self, item: Inference) -> bool:
        """Queue a request; False when the queue is full (the caller answers 503)."""
        if len(self.queue) >= self.spec.queue_size:
            return False
        self.queue.append(item)
        self.schedule_pump()
        return True

    def schedule_pump(self) -> None:
        """Pump once at the end of this loop iteration, so that every request and reply that arrived
        in it travels to a worker in one write (one syscall and one wake-up for many requests).
        Nothing waiting: nothing to pump (a reply that frees a worker schedules nothing then)."""
        if not self._pump_scheduled and self._loop is not None and (self.queue or self._pinned):
            self._pump_scheduled = True
            self._loop.call_soon(self.pump)

    def pump(self) -> None:
        """Send as many batches as workers can take now; arm the batch timer if told to wait."""
        self._pump_scheduled = False
        queue, spec, counters = self.queue, self.spec, self.counters
        now = time.monotonic() if counters is not None else 0.0  # one clock read for every batch sent now
        touched: list[Worker] = []
        if self._pinned:
            self._pump_pinned(touched)
        while queue:
            worker = self._least_busy()
            if worker is None:
                break
            if spec.batch_size == 1:
                take = 1
            else:
                cut = batching.decide(len(queue), spec.batch_size, time.monotonic() - queue[0].arrived,
                                      spec.max_batch_delay)
                take = cut.take
                if not take:
                    if self._batch_timer is None and cut.wait is not None and self._loop is not None:
                        self._batch_timer = self._loop.call_later(cut.wait, self._on_batch_timer)
                    break
            items = [queue.popleft()] if take == 1 else [queue.popleft() for _ in range(take)]
            if take > 1 or items[0].sink.cancelled:
                items = [item for item in items if not item.sink.cancelled]
                if not items:
                    continue
            worker.send(items)
            if counters is not None:
                counters.dispatched(items, now)
            self.batches_sent += 1
            self.requests_sent += len(items)
            if worker not in touched:
                touched.append(worker)
        for worker in touched:
            worker.flush()

    def _pump_pinned(self, touched: list[Worker]) -> None:
        """Requests of stateful sessions go to their own worker only, one per batch, in order."""
        for worker in self.workers:
            pinned = worker.pinned
            while pinned and worker.state == WorkerState.READY and len(worker.inflight) < self._pipeline:
                item = pinned.popleft()
                self._pinned -= 1
                if isinstance(item, PendingClose):
                    self._next_call += 1
                    self._close_calls[self._next_call] = (worker, item.sink.done)
                    worker.outbox.append(p.encode(p.CloseSession(self._next_call, item.session_id)))
                    if worker not in touched:
                        touched.append(worker)
                    continue
                if item.sink.cancelled:
                    continue
                worker.send([item])
                self.batches_sent += 1
                self.requests_sent += 1
                if worker not in touched:
                    touched.append(worker)

    def _on_batch_timer(self) -> None:
        self._batch_timer = None
        self.pump()

    def _least_busy(self) -> Worker | None:
        """An idle worker if there is one; else one that is busy but moving (its current batch
        started less than ``STALL`` ago) and has pipeline room; else none, and requests wait here.

        So a worker stuck in a long request is never handed more work while others can take it,
        and pipelining, which only pays for quick batches, happens only behind quick batches.
        """
        best = None
        idle = None
        now = 0.0
        for worker in self.workers:
            if worker.state != WorkerState.READY:
                continue
            depth = len(worker.inflight)
            if not depth:
                if not worker.channels:
                    return worker
                if idle is None or len(worker.channels) < len(idle.channels):
                    idle = worker
                continue
            if idle is not None:
                continue
            if depth >= self._pipeline:
                continue
            now = now or time.monotonic()
            if now - worker.head_started < STALL and (best is None or depth < len(best.inflight)):
                best = worker
        return idle or best

    # -- timeouts -------------------------------------------------------------------------------

    def _sweep(self) -> None:
        now = time.monotonic()
        timeout = self.spec.response_timeout
        for worker in self.workers:
            if worker.inflight and not worker.timed_out and now - worker.head_started > timeout:
                worker.timed_out = True
                ids = b",".join([item.request_id for item in worker.inflight[0].items]).decode("latin-1")
                logger.error("%s ran a batch past the %g s timeout; replacing it", worker.label, timeout,
                             extra={"model": self.spec.name, "request_id": ids or None})
                worker.kill()
        while self.queue and now - self.queue[0].arrived > timeout:
            item = self.queue.popleft()
            item.sink.deliver(error_response(504, "TimeoutException",
                                             f"No worker of model {self.spec.name} became free within "
                                             f"{timeout:g} seconds."))
        for worker in self.workers:
            if worker.channels:
                for channel in list(worker.channels.values()):
                    if isinstance(channel, Stream):
                        channel.check_timeout(now, timeout)
            while worker.pinned and now - worker.pinned[0].arrived > timeout:
                self._pinned -= 1
                worker.pinned.popleft().sink.deliver(error_response(
                    504, "TimeoutException", f"The session's worker did not become free within {timeout:g} seconds."))
        if self.sessions:
            for session in self.sessions.expire(now):
                if not session.lost:
                    cast(Worker, session.worker).sticky_sessions -= 1
                    self._call_close(session, lambda status, message: None)
        if self._loop is not None and not self.stopping:
            self._sweeper = self._loop.call_later(SWEEP_PERIOD, self._sweep)

    def describe(self) -> list[dict[str, object]]:
        return [{"id": f"{self.spec.name}-{w.index}", "pid": w.pid, "status": w.state.value,
                 "startTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(w.started_at)),
                 "inFlight": sum(len(b.items) for b in w.inflight)} for w in self.workers]
