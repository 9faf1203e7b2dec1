"""The application: what the frontend does with a parsed request.

It owns the server-wide state the endpoints share (config, model registry, draining flag, open
connections) and maps routing results to endpoint calls and 404/405 answers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable
from urllib.parse import unquote

from sagemaker_inference.server import endpoints
from sagemaker_inference.server.config import ServerConfig
from sagemaker_inference.server.observability import endpoints as observability
from sagemaker_inference.server.observability.counters import ServerCounters
from sagemaker_inference.server.registry import ModelRegistry
from sagemaker_inference.server.routing import Match, MethodNotAllowed, Route, Router

if TYPE_CHECKING:
    from sagemaker_inference.server.http.protocol import Exchange, HTTPConnection
    from sagemaker_inference.server.observability.prometheus import Exposition
    from sagemaker_inference.server.observability.tracing import ServerTracer

Endpoint = Callable[["App", "Exchange", dict[str, str]], None]

INFERENCE_ROUTES = (
    Route("/ping", {"GET": "ping", "POST": "ping"}),
    Route("/invocations", {"POST": "invocations"}),
    Route("/execution-parameters", {"GET": "execution_parameters"}),
    Route("/models/{name}/invoke", {"POST": "invoke"}),
)
MANAGEMENT_ROUTES = (
    Route("/models", {"GET": "list_models", "POST": "register_model"}),
    Route("/models/{name}", {"GET": "describe_model", "DELETE": "unregister_model", "PUT": "scale_model"}),
)


class App:
    def __init__(self, config: ServerConfig, registry: ModelRegistry):
        self.config = config
        self.registry = registry
        self.draining = False
        self.connections: set[HTTPConnection] = set()
        routes = INFERENCE_ROUTES + (MANAGEMENT_ROUTES if config.multi_model else ()) + observability.ROUTES
        self.router = Router(routes)
        self.endpoints: dict[str, Endpoint] = {**endpoints.table(config.multi_model), **observability.table()}
        self.access_log = config.access_log
        self.counters = ServerCounters() if config.metrics else None
        self.exposition: Exposition | None = None  # built on the first scrape
        self.tracer: ServerTracer | None = None  # set when OpenTelemetry is configured

    def handle(self, exchange: Exchange) -> None:
        request = exchange.request
        assert request is not None
        method = request.method.decode("latin-1")
        result = self.router.match(method, request.path.decode("latin-1"))
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

    def close_idle_connections(self) -> None:
        for connection in list(self.connections):
            connection.close_if_idle()
