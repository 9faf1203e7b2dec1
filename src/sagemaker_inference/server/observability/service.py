"""What runs beside the server for observability: the separate metrics listener
(``--metrics-port``) and the EMF reporter. The supervisor starts it after its own listener and
stops it at the end of the drain (a last EMF line covers the final partial interval).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

from sagemaker_inference.server.observability import endpoints as observability
from sagemaker_inference.server.observability.emf import EmfReporter
from sagemaker_inference.server.observability.tracing import ServerTracer, tracing_enabled
from sagemaker_inference.server.observability.tracing import shutdown as tracing_shutdown

if TYPE_CHECKING:
    from sagemaker_inference.server.app import App

logger = logging.getLogger("sagemaker_inference.server")


def observability_app(main: App) -> App:
    """An ``App`` over the same models and counters that routes only ``/metrics``, ``/livez``
    and ``/readyz`` (for the separate metrics port)."""
    from sagemaker_inference.server.app import App

    app = App(main.config, main.registry, observability.ROUTES, dict(observability.table()))
    app.counters = main.counters
    app.http.access_log = False
    return app


class Telemetry:
    def __init__(self, app: App, out: TextIO | None = None):
        self.app = app
        self.config = app.config
        self.out = out
        self.metrics_app: App | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._emf: EmfReporter | None = None
        self._emf_task: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """False (after one log line) if the metrics port cannot be listened on."""
        config, loop = self.config, asyncio.get_running_loop()
        if config.metrics_port is not None:
            self.metrics_app = observability_app(self.app)
            metrics_app = self.metrics_app
            try:
                self._listener = await loop.create_server(metrics_app.http.connection, config.host,
                                                          config.metrics_port, reuse_address=True)
            except OSError as exc:
                logger.error("cannot listen on %s:%d for metrics (--metrics-port / SAGEMAKER_METRICS_PORT): %s",
                             config.host, config.metrics_port, exc.strerror or exc)
                return False
        if tracing_enabled(config.tracing):
            self.app.tracer = ServerTracer()
        if config.emf and self.app.counters is not None:
            self._emf = EmfReporter(config.emf_namespace)
            self._emf_task = loop.create_task(self._emf_loop(config.emf_interval))
        return True

    async def _emf_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.emit()

    async def emit(self) -> None:
        """Ask the workers for fresh figures (briefly), then write one EMF line per model."""
        if self._emf is None:
            return
        waiting = self.app.registry.request_stats()
        if waiting:
            await asyncio.wait(waiting, timeout=observability.STATS_WAIT)
        lines = self._emf.lines(list(self.app.registry.models.values()), int(time.time() * 1000))
        if lines:
            out = self.out or sys.stdout
            out.write("".join(line + "\n" for line in lines))
            out.flush()

    async def stop(self) -> None:
        if self.app.tracer is not None:
            tracing_shutdown()
        if self._emf_task is not None:
            self._emf_task.cancel()
            await self.emit()
        if self._listener is not None:
            self._listener.close()
        if self.metrics_app is not None:
            for connection in list(self.metrics_app.http.connections):
                connection.close()
