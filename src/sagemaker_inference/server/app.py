"""The application: what the frontend does with a parsed request.

It owns the server-wide state the endpoints share (config, model registry, the HTTP layer's
``ServerState`` with the draining flag and the open connections) and maps routing results to
endpoint calls and 404/405 answers. Routes and endpoints are given to it (``endpoints.routes``,
``endpoints.table``), so this module imports no endpoint: the layers point one way (supervisor
-> app -> HTTP layer; endpoints -> app; the HTTP layer imports nothing of ours).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Callable, Protocol
from urllib.parse import unquote

from sagemaker_inference.server.config import ServerConfig
from sagemaker_inference.server.http.protocol import ServerState
from sagemaker_inference.server.observability.counters import ServerCounters
from sagemaker_inference.server.observability.requestid import INFERENCE_ID_HEADER
from sagemaker_inference.server.registry import ModelRegistry
from sagemaker_inference.server.routing import Match, MethodNotAllowed, Route, Router

if TYPE_CHECKING:
    from sagemaker_inference.server.http.protocol import Exchange
    from sagemaker_inference.server.observability.tracing import ServerTracer

Endpoint = Callable[["App", "Exchange", dict[str, str]], None]


class Exposition(Protocol):
    """``observability.prometheus.Exposition``, seen from here (which must not import it)."""

    def render(self, accept: bytes | None) -> tuple[bytes, str]: ...


class App:
    def __init__(self, config: ServerConfig, registry: ModelRegistry, routes: Sequence[Route],
                 endpoints: Mapping[str, Endpoint]):
        self.config = config
        self.registry = registry
        self.router = Router(routes)
        self.endpoints = endpoints
        self.http = ServerState(self.handle, max_body=config.max_request_size, budget=config.max_buffered_payload,
                                read_timeout=config.request_read_timeout, access_log=config.access_log,
                                max_connections=config.max_connections, id_header=INFERENCE_ID_HEADER)
        self.counters = ServerCounters() if config.metrics else None
        self.exposition: Exposition | None = None  # built on the first scrape
        self.tracer: ServerTracer | None = None  # set when OpenTelemetry is configured

    @property
    def draining(self) -> bool:
        return self.http.draining

    def handle(self, exchange: Exchange) -> None:
        request = exchange.request
        assert request is not None
        result = self.router.match_raw(request.method, request.path)
        if isinstance(result, Match):
            params = {k: unquote(v) for k, v in result.params.items()} if result.params else result.params
            try:
                self.endpoints[result.endpoint](self, exchange, params)
            except Exception:
                logging.getLogger("sagemaker_inference.server").exception("endpoint %s failed", result.endpoint)
                exchange.respond_error(500, "InternalServerException", "Internal server error.")
        elif isinstance(result, MethodNotAllowed):
            exchange.respond_error(405, "MethodNotAllowedException",
                                   "Requested method is not allowed, please refer to API document.",
                                   extra=((b"allow", ", ".join(result.allow).encode()),))
        else:
            exchange.respond_error(404, "ResourceNotFoundException",
                                   "Requested resource is not found, please refer to API document.")
