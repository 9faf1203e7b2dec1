"""The server process: event loop, listening socket, models, signals, drain, exit code.

Signal handlers only record what happened; the main coroutine acts. SIGTERM and SIGINT drain:
stop accepting, let in-flight requests finish (bounded by ``DRAIN_SECONDS``), stop the workers,
exit 0. Every child is reaped, ours or orphans re-parented to us when we run as PID 1 in a
container, and a worker is told how it ended.

Startup failure in single-model mode (the handler cannot be imported, ``model_fn`` raises) is
one clear log line and exit code 1, instead of MMS's retry-forever.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence

from sagemaker_inference.server.app import App
from sagemaker_inference.server.config import ServerConfig
from sagemaker_inference.server.http.protocol import HTTPConnection
from sagemaker_inference.server.logs import configure as configure_logging
from sagemaker_inference.server.observability.service import Telemetry
from sagemaker_inference.server.registry import LoadError, ModelRegistry
from sagemaker_inference.server.workers.spawn import Spawned
from sagemaker_inference.server.workers.worker import Worker

logger = logging.getLogger("sagemaker_inference.server")

DRAIN_SECONDS = 20.0
REQUEST_READ_TIMEOUT = 60.0
EXIT_STARTUP_FAILURE = 1


class Server:
    def __init__(self, config: ServerConfig, prespawned: Sequence[Spawned] = ()):
        self.config = config
        self.prespawned = prespawned
        self.children: dict[int, Worker] = {}
        self.registry = ModelRegistry(config, self.children)
        self.app = App(config, self.registry)
        self.telemetry = Telemetry(self.app)
        self.exit_code = 0
        self.started = time.monotonic()
        self._stop: asyncio.Event | None = None
        self._listener: asyncio.Server | None = None

    def request_stop(self, exit_code: int = 0) -> None:
        self.exit_code = self.exit_code or exit_code
        if self._stop is not None:
            self._stop.set()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        try:
            self._listener = await loop.create_server(  # type: ignore[assignment]
                lambda: HTTPConnection(self.app), self.config.host, self.config.port, backlog=1024,
                reuse_address=True)
        except OSError as exc:
            logger.error("cannot listen on %s:%d: %s", self.config.host, self.config.port, exc.strerror or exc)
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
        await self._stop.wait()
        sweeper.cancel()
        await self._drain()
        return self.exit_code

    def _address(self) -> str:
        assert self._listener is not None
        sockets = self._listener.sockets
        host, port = sockets[0].getsockname()[:2] if sockets else (self.config.host, self.config.port)
        return f"http://{host}:{port}"

    async def _load_startup_model(self) -> None:
        config = self.config
        spec = self.registry.spec(config.model_name, config.model_dir)
        try:
            await asyncio.wait_for(self.registry.load(spec, config.model_dir, at_startup=True,
                                                      prespawned=self.prespawned), config.startup_timeout)
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
        logger.info("received %s: draining", signal.Signals(sig).name)
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
                self._close_stalled_connections()
            except Exception:  # a bug here must not end reaping and the sweep for good
                logger.exception("housekeeping failed; continuing")

    def _close_stalled_connections(self) -> None:
        now = time.monotonic()
        for connection in list(self.app.connections):
            if connection.partial_since is not None and now - connection.partial_since > REQUEST_READ_TIMEOUT:
                connection.close()

    async def _drain(self) -> None:
        started = time.monotonic()
        self.app.draining = True
        if self._listener is not None:
            self._listener.close()
        self.app.close_idle_connections()
        await self.registry.stop_all(DRAIN_SECONDS)
        deadline = time.monotonic() + 2.0
        while any(c.outstanding for c in self.app.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.app.connections):
            connection.close()
        await self.telemetry.stop()
        self._reap()
        logger.info("stopped in %.2f s", time.monotonic() - started)


def run(config: ServerConfig, prespawned: Sequence[Spawned] = ()) -> int:
    """Run the server until SIGTERM/SIGINT or a startup failure; return the exit code.

    ``prespawned``: workers of the startup model already started (see ``server.serve``).
    """
    configure_logging(config.log_level, config.log_format)
    server = Server(config, prespawned)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we serve on
        return asyncio.run(server.serve())
    if not hasattr(uvloop, "run"):  # pragma: no cover - uvloop < 0.18
        uvloop.install()
        return asyncio.run(server.serve())
    return uvloop.run(server.serve())


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
