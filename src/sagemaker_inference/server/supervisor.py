"""The server process: event loop, listening socket, models, signals, drain, exit code.

Signal handlers only record what happened; the main coroutine acts. SIGTERM and SIGINT drain:
stop accepting, let in-flight requests finish (bounded by ``DRAIN_SECONDS``), stop the workers,
exit 0. A second signal cuts the drain short: what is still queued or running gets 503 and the
workers are killed. Every child is reaped, ours or orphans re-parented to us when we run as PID 1
in a container, and a worker is told how it ended.

No request the kernel accepted is lost at the stop: connections still in the listening socket's
backlog are accepted (not reset by closing it) and, like connections that have not sent their
first request yet, are given a moment to send it; each is served (``Connection: close``), or
answered 503 once the workers are gone, then closed. Only connections that are idle between
requests are closed at once.

Startup failure in single-model mode (the handler cannot be imported, ``model_fn`` raises) is
one clear log line and exit code 1, instead of MMS's retry-forever.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence
from typing import Callable

from sagemaker_inference.server import endpoints, startup_signals
from sagemaker_inference.server.app import App
from sagemaker_inference.server.config import ServerConfig
from sagemaker_inference.server.http.protocol import HTTPConnection
from sagemaker_inference.server.logs import configure as configure_logging
from sagemaker_inference.server.observability import endpoints as observability
from sagemaker_inference.server.observability.service import Telemetry
from sagemaker_inference.server.registry import LoadError, ModelRegistry
from sagemaker_inference.server.workers.spawn import Spawned
from sagemaker_inference.server.workers.worker import Worker

logger = logging.getLogger("sagemaker_inference.server")

DRAIN_SECONDS = 20.0
FIRST_REQUEST_GRACE = 1.0  # at the stop, for connections that have not sent their first request yet
RESPONSES_GRACE = 2.0  # after the workers stopped, for the last responses to be written
EXIT_STARTUP_FAILURE = 1


class Server:
    def __init__(self, config: ServerConfig, prespawned: Sequence[Spawned] = ()):
        self.config = config
        self.prespawned = prespawned
        self.children: dict[int, Worker] = {}
        self.registry = ModelRegistry(config, self.children)
        routes = endpoints.routes(config.multi_model, config.bidi_path) + observability.ROUTES
        self.app = App(config, self.registry, routes, {**endpoints.table(config.multi_model), **observability.table()})
        self.telemetry = Telemetry(self.app)
        self.exit_code = 0
        self.started = time.monotonic()
        self._stop: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self._listener: asyncio.Server | None = None

    def request_stop(self, exit_code: int = 0) -> None:
        self.exit_code = self.exit_code or exit_code
        if self._stop is not None:
            self._stop.set()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop, self._hurry = asyncio.Event(), asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        early = startup_signals.received()  # recorded before the loop took the signals over
        if early is not None:
            self._on_stop_signal(early)
        try:
            self._listener = await loop.create_server(  # type: ignore[assignment]
                self.app.http.connection, self.config.host, self.config.port, backlog=1024, reuse_address=True)
        except OSError as exc:
            logger.error("cannot listen on %s:%d: %s; choose another port with --port (SAGEMAKER_BIND_TO_PORT)",
                         self.config.host, self.config.port, exc.strerror or exc)
            return EXIT_STARTUP_FAILURE
        if not await self.telemetry.start():
            self._listener.close()
            return EXIT_STARTUP_FAILURE
        sweeper = loop.create_task(self._housekeeping())
        if not self.config.multi_model:
            loop.create_task(self._load_startup_model())
        else:
            logger.info("multi-model server listening on %s; load models with POST /models (model root %s)",
                        self._address(), self.config.model_root)
            for name, model_dir, handler in self.config.startup_models:
                loop.create_task(self._load_startup_model(name, model_dir, handler or None))
        await self._stop.wait()
        sweeper.cancel()
        await self._drain()
        return self.exit_code

    def _address(self) -> str:
        assert self._listener is not None
        sockets = self._listener.sockets
        host, port = sockets[0].getsockname()[:2] if sockets else (self.config.host, self.config.port)
        return f"http://{host}:{port}"

    async def _load_startup_model(self, name: str | None = None, model_dir: str | None = None,
                                  handler: str | None = None) -> None:
        """The single model, or (multi-model) one of ``startup_models``: a failed load stops the server."""
        config = self.config
        spec = self.registry.spec(name or config.model_name, model_dir or config.model_dir, handler=handler)
        try:
            await asyncio.wait_for(self.registry.load(spec, spec.model_dir, at_startup=True,
                                                      prespawned=() if name else self.prespawned),
                                   config.startup_timeout)
        except LoadError as exc:
            if self._stop is not None and self._stop.is_set():
                return  # stopped while loading: the workers were told to go, not a failed load
            logger.error("startup failed: model %r from %s could not be loaded: %s", spec.name, spec.model_dir,
                         exc.message)
            self.request_stop(EXIT_STARTUP_FAILURE)
            return
        except asyncio.TimeoutError:
            logger.error("startup failed: model %r did not load within %g s (SAGEMAKER_STARTUP_TIMEOUT)",
                         spec.name, config.startup_timeout)
            self.request_stop(EXIT_STARTUP_FAILURE)
            return
        logger.info("ready on %s: model %r from %s, handler %s, %d worker(s), batch size %d; ready in %.2f s",
                    self._address(), spec.name, spec.model_dir, spec.handler, spec.workers, spec.batch_size,
                    time.monotonic() - self.started)

    def _on_stop_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self._stop is not None and self._stop.is_set() and self._hurry is not None:
            if not self._hurry.is_set():
                logger.warning("received %s again: stopping now; requests still running get 503", name)
                self._hurry.set()
            return
        logger.info("received %s: draining (up to %g s; send it again to stop at once)", name, DRAIN_SECONDS)
        self.request_stop(0)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return
            if pid == 0:
                return
            worker = self.children.pop(pid, None)
            if worker is not None:
                worker.on_exit(status)

    async def _housekeeping(self) -> None:
        """Reap children; close connections that sent part of a request and then stalled (slowloris).

        Reaping polls instead of using SIGCHLD, which uvloop reserves for itself: a worker's death
        is noticed at once through its socket anyway; the poll only collects exit statuses and,
        as PID 1, zombies of orphans re-parented to us.
        """
        while True:
            await asyncio.sleep(0.5)
            try:
                self._reap()
                self.app.http.sweep(time.monotonic())
            except Exception:  # a bug here must not end reaping and the sweep for good
                logger.exception("housekeeping failed; continuing")

    async def _drain(self) -> None:
        started = time.monotonic()
        http = self.app.http
        http.draining = True
        accepted = await self._stop_listening()
        http.close_idle()
        await self._settle(lambda c: c.receiving, FIRST_REQUEST_GRACE)
        stopping = asyncio.ensure_future(self.registry.stop_all(DRAIN_SECONDS))
        assert self._hurry is not None
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait((stopping, hurry), return_when=asyncio.FIRST_COMPLETED)
        if not stopping.done():
            self.registry.cut_drain()
            for worker in list(self.children.values()):
                worker.kill()
        await stopping
        hurry.cancel()
        await self._settle(lambda c: c.owes or c.receiving, RESPONSES_GRACE)
        for connection in list(http.connections):
            connection.close()
        await self.telemetry.stop()
        self._reap()
        logger.info("stopped in %.2f s%s", time.monotonic() - started,
                    f" ({accepted} connection(s) accepted from the backlog at the stop)" if accepted else "")

    async def _stop_listening(self) -> int:
        """Close the listening sockets without resetting the connections waiting in their backlog:
        a duplicate of each socket outlives the server's, and those connections are accepted from it."""
        listener = self._listener
        if listener is None:
            return 0
        loop = asyncio.get_running_loop()
        duplicates = [socket.socket(fileno=os.dup(s.fileno())) for s in listener.sockets]
        listener.close()
        # A handshake completing between the last accept and the close would land in the backlog and be
        # reset by the close: admit no new connection first (they are refused once we have closed), let
        # the handshakes already under way finish, then empty the backlog.
        admitting = [sock for sock in duplicates if not _refuse_new_connections(sock)]
        if len(admitting) < len(duplicates):
            await asyncio.sleep(HANDSHAKE_GRACE)
        accepted = 0
        for sock in duplicates:
            with sock:
                sock.setblocking(False)
                while True:
                    try:
                        conn, _ = sock.accept()
                    except OSError:  # BlockingIOError: the backlog is empty
                        break
                    accepted += 1
                    try:
                        await loop.connect_accepted_socket(self.app.http.connection, conn)
                    except OSError:
                        conn.close()
        return accepted

    async def _settle(self, waiting: Callable[[HTTPConnection], bool], grace: float) -> None:
        """Until no connection is ``waiting``, at most ``grace`` seconds or until a second signal."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not (self._hurry is not None and self._hurry.is_set()):
            if not any(waiting(c) for c in self.app.http.connections):
                return
            await asyncio.sleep(0.01)


def run(config: ServerConfig, prespawned: Sequence[Spawned] = ()) -> int:
    """Run the server until SIGTERM/SIGINT or a startup failure; return the exit code.

    ``prespawned``: workers of the startup model already started (see ``server.serve``).
    """
    configure_logging(config.log_level, config.log_format)
    if config.mmap_threshold:
        bound_heap_growth(config.mmap_threshold)
    server = Server(config, prespawned)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we serve on
        return asyncio.run(server.serve())
    if not hasattr(uvloop, "run"):  # pragma: no cover - uvloop < 0.18
        uvloop.install()
        return asyncio.run(server.serve())
    return uvloop.run(server.serve())


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def bound_heap_growth(threshold: int) -> None:
    """Keep request bodies in their own memory mappings, given back to the kernel when freed.

    glibc raises its mmap threshold each time a block above it is freed (up to 32 MB); from then on
    bodies come from the heap, and a heap fragmented by thousands of read buffers does not shrink:
    150 uploads of 5 MB with a 256 MB budget peaked at 539 MB of RSS, with this at 320 MB. Setting
    the threshold fixes it (and turns the adjustment off). Not glibc: nothing to do.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


HANDSHAKE_GRACE = 0.02  # seconds for handshakes under way when the listener stops admitting (loopback: microseconds)
_SO_ATTACH_FILTER = 26  # Linux


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _refuse_new_connections(sock: socket.socket) -> bool:
    """Attach a classic-BPF program that drops every connection request (a TCP segment with SYN
    and without ACK) to the listening socket, so no new handshake starts into its backlog. All
    else passes: the connections already there stay, and a handshake under way still completes
    (its last ACK goes through the listener's filter too; dropping it, as a drop-all program did,
    left a client that had connected with nothing but a reset at the close). A dropped SYN is
    retransmitted after a second and then refused, since we have closed. False where the kernel
    has no socket filters: the drain then has the small window it had before.

    A TCP socket's filter sees the segment from its TCP header on: byte 13 holds the flags.
    """
    syn_only = (_SockFilter * 5)(
        _SockFilter(0x30, 0, 0, 13),  # BPF_LD | BPF_B | BPF_ABS: A = flags
        _SockFilter(0x54, 0, 0, 0x12),  # BPF_ALU | BPF_AND | BPF_K: A &= SYN | ACK
        _SockFilter(0x15, 0, 1, 0x02),  # BPF_JMP | BPF_JEQ | BPF_K: SYN alone? next : skip one
        _SockFilter(0x06, 0, 0, 0),  # BPF_RET | BPF_K: drop
        _SockFilter(0x06, 0, 0, 0xFFFFFFFF),  # BPF_RET | BPF_K: accept, whole segment
    )
    program = _SockFprog(len(syn_only), syn_only)
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, bytes(program))
    except OSError:
        return False
    return True
