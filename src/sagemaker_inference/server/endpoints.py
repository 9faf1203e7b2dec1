"""The endpoints of the SageMaker hosting contract: ``/ping``, ``/invocations``,
``/execution-parameters`` and ``/models/{name}/invoke``. Management endpoints (multi-model
mode) live in ``management.py``.

``/ping`` is answered here, from registry state, never queued behind inference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable
from urllib.parse import parse_qsl

from sagemaker_inference.server import session_endpoints
from sagemaker_inference.server.observability.requestid import request_id_for
from sagemaker_inference.server.routing import Route
from sagemaker_inference.server.workers.worker import Inference

if TYPE_CHECKING:
    from sagemaker_inference.server.app import App
    from sagemaker_inference.server.http.protocol import Exchange

TARGET_MODEL_HEADER = b"x-amzn-sagemaker-target-model"
MODEL_NAME_REQUIRED = ("Parameter model_name is required. Name the model with the X-Amzn-SageMaker-Target-Model "
                       "header or the model_name query parameter.")
INFERENCE_ROUTES = (
    Route("/ping", {"GET": "ping", "POST": "ping"}),
    Route("/invocations", {"POST": "invocations"}),
    Route("/execution-parameters", {"GET": "execution_parameters"}),
    Route("/models/{name}/invoke", {"POST": "invoke"}),
)
HEALTHY = {"status": "Healthy"}
UNHEALTHY = {"status": "Unhealthy"}


def ping(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    if app.config.multi_model or app.registry.healthy and app.registry.models:
        exchange.respond_json(200, HEALTHY)
    else:
        exchange.respond_json(503, UNHEALTHY)


def invocations(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    request = exchange.request
    assert request is not None
    query = _query(exchange, request.query) if request.query else []
    if query is None:
        return
    name = request.header(TARGET_MODEL_HEADER) if app.config.multi_model else None
    target = name.decode("utf-8", "replace") if name else dict(query).get("model_name", "")
    _infer(app, exchange, target, query)


def invoke(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    request = exchange.request
    assert request is not None
    query = _query(exchange, request.query) if request.query else []
    if query is None:
        return
    _infer(app, exchange, params["name"], query, "/models/{name}/invoke")


def _query(exchange: Exchange, raw: bytes) -> list[tuple[str, str]] | None:
    """The query's parameters, or None after answering 400.

    NUL is refused: the worker protocol joins parameters with it, so ``?a=1%00b%00c`` would hand
    the handler a parameter ``b`` the client never sent. Only ``%00`` decodes to NUL (llhttp
    refuses a raw one), so looking for it in the raw query is enough.
    """
    if b"%00" in raw:
        exchange.respond_error(400, "BadRequestException",
                               "Query parameters must not contain NUL (%00).")
        return None
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


def _infer(app: App, exchange: Exchange, target: str, query: list[tuple[str, str]],
           route: str = "/invocations") -> None:
    registry = app.registry
    request = exchange.request
    assert request is not None
    exchange.request_id = request_id = request_id_for(request)
    if not target:
        if app.config.multi_model or len(registry.models) != 1:
            _refuse(app, exchange, 400, "BadRequestException", MODEL_NAME_REQUIRED)
            return
        target = next(iter(registry.models))
    model = registry.get(target)
    if model is None:
        if target in registry.models and not app.config.multi_model:
            _refuse(app, exchange, 503, "ServiceUnavailableException", f"Model {target} is not ready yet.")
        else:
            _refuse(app, exchange, 404, "ModelNotFoundException", f"Model not found: {target}")
        return
    if model.group.stopping:
        _refuse(app, exchange, 503, "ServiceUnavailableException", f"Model {target} is being stopped.")
        return
    params = [(k.encode(), v.encode()) for k, v in query] if query else ()
    headers = request.headers
    if app.tracer is None:
        exchange.observer = model.group.counters
    else:
        headers, exchange.observer = app.tracer.begin(request, route, target, request_id, model.group.counters)
    item = Inference(request_id, headers, params, request.body, exchange, exchange.started)
    exchange.job = item
    model.last_used = item.arrived
    if app.config.stateful_sessions and session_endpoints.handle_stateful(app, exchange, model, item):
        return
    if not model.group.submit(item):
        if exchange.observer is not None:
            exchange.observer.finished(503, exchange.started)
        exchange.respond_error(503, "ServiceUnavailableException",
                               f"No worker is available to serve request for model: {target}. "
                               "Consider increasing job queue size.")


def _refuse(app: App, exchange: Exchange, status: int, error_type: str, message: str) -> None:
    """An inference request answered before it reached a model (counted with no model label)."""
    if app.counters is not None:
        app.counters.refused(status)
    exchange.respond_error(status, error_type, message)


def execution_parameters(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    """What SageMaker batch transform should send us; a model's hook may override any field."""
    config = app.config
    values: dict[str, object] = {
        "MaxConcurrentTransforms": config.worker_count * max(1, config.batch_size),
        "BatchStrategy": "MULTI_RECORD" if config.batch_size > 1 else "SINGLE_RECORD",
        "MaxPayloadInMB": config.max_payload_mb,
    }
    for model in app.registry.models.values():
        values.update(model.group.execution_parameters)
    exchange.respond_json(200, values)


def routes(multi_model: bool, bidi_path: str = "/invocations-bidirectional-stream") -> tuple[Route, ...]:
    inference = INFERENCE_ROUTES + (Route(bidi_path, {"GET": "bidirectional_stream"}),)
    if multi_model:
        from sagemaker_inference.server import management

        return inference + management.MANAGEMENT_ROUTES
    return inference


def table(multi_model: bool) -> dict[str, Callable[[App, Exchange, dict[str, str]], None]]:
    endpoints: dict[str, Callable[[App, Exchange, dict[str, str]], None]] = {
        "ping": ping,
        "invocations": invocations,
        "invoke": invoke,
        "execution_parameters": execution_parameters,
        "bidirectional_stream": session_endpoints.bidirectional_stream,
    }
    if multi_model:
        from sagemaker_inference.server import management

        endpoints.update(management.table())
    return endpoints
