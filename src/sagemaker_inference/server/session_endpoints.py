"""The session side of the SageMaker contract: the bidirectional stream endpoint (a WebSocket on
``/invocations-bidirectional-stream``) and stateful sessions on ``/invocations``.

Bidirectional: the upgrade is checked in this order, each refusal a plain HTTP answer and the
connection closed: not an upgrade (426), not a valid handshake (400), no such model (404/503),
the model has no ``bidirectional_stream_fn`` (501), every worker at its session cap (503). Then
a session is opened on the worker with the fewest and the connection becomes a WebSocket.

Stateful sessions (``SAGEMAKER_ENABLE_STATEFUL_SESSIONS=true``): a JSON body whose
``requestType`` is ``NEW_SESSION`` or ``CLOSE`` is answered here (the handler never sees it);
requests with ``X-Amzn-SageMaker-Session-Id`` run on the session's worker (``sessions.py``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from sagemaker_inference.server import sessions as s
from sagemaker_inference.server.workers import protocol as p

if TYPE_CHECKING:
    from sagemaker_inference.server.app import App
    from sagemaker_inference.server.http.protocol import Exchange
    from sagemaker_inference.server.registry import Model
    from sagemaker_inference.server.workers.pool import WorkerGroup
    from sagemaker_inference.server.workers.worker import Inference

TARGET_MODEL_HEADER = b"x-amzn-sagemaker-target-model"
_SESSION_REQUEST_LIMIT = 4096  # a session request is a small JSON object; larger bodies are inference


def bidirectional_stream(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    # Imported here: wsproto (and the h11 it imports) add ~20 ms to every server's startup; only a
    # bidirectional session needs them.
    from sagemaker_inference.server.http import websocket

    request = exchange.request
    assert request is not None
    if not request.upgrade:
        exchange.respond_error(426, "UpgradeRequiredException",
                               f"{request.path.decode('latin-1')} is a WebSocket endpoint: send a GET with "
                               "'Upgrade: websocket'.", extra=((b"upgrade", b"websocket"),))
        return
    try:
        connection = websocket.handshake(request)
    except websocket.HandshakeError as exc:
        exchange.respond_error(400, "BadRequestException", str(exc))
        return
    name = request.header(TARGET_MODEL_HEADER) if app.config.multi_model else None
    model = _model(app, exchange, name.decode("utf-8", "replace") if name else "")
    if model is None:
        return
    if not model.group.capabilities & p.CAN_BIDI:
        exchange.respond_error(501, "NotImplementedException",
                               f"Model {model.name} does not support bidirectional streaming: define "
                               "bidirectional_stream_fn(messages, model) in its inference.py.")
        return
    ws = websocket.WebSocketConnection(connection, app.config.max_request_size, app.config.websocket_ping_interval,
                                       app.http.websockets)
    from sagemaker_inference.server.observability.requestid import request_id_for

    request_id = request_id_for(request)
    params_pairs = _query_pairs(request.query)
    session = model.group.open_bidi_session(ws, p.Request(request_id, request.headers, params_pairs, b""))
    if session is None:
        exchange.respond_error(503, "ServiceUnavailableException",
                               f"Model {model.name} has {model.group.spec.max_bidi_sessions} bidirectional sessions "
                               "open on every worker; retry later or raise "
                               "SAGEMAKER_MAX_BIDIRECTIONAL_SESSIONS_PER_WORKER.")
        return
    ws.attach(session)
    if not exchange.connection.switch_to_websocket(exchange, ws):
        session.client_closed(websocket.CLOSE_GOING_AWAY)
        exchange.respond_error(400, "BadRequestException", "A WebSocket upgrade must not follow pipelined requests.")


def _model(app: App, exchange: Exchange, target: str) -> Model | None:
    registry = app.registry
    if not target:
        if app.config.multi_model or len(registry.models) != 1:
            exchange.respond_error(400, "BadRequestException",
                                   "Parameter model_name is required (X-Amzn-SageMaker-Target-Model).")
            return None
        target = next(iter(registry.models))
    model = registry.get(target)
    if model is None:
        if target in registry.models:
            exchange.respond_error(503, "ServiceUnavailableException", f"Model {target} is not ready yet.")
        else:
            exchange.respond_error(404, "ModelNotFoundException", f"Model not found: {target}")
    return model


def _query_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    from urllib.parse import parse_qsl

    if not raw or b"%00" in raw:
        return []
    return [(k.encode(), v.encode()) for k, v in parse_qsl(raw.decode("latin-1"), keep_blank_values=True)]


# -- stateful sessions ---------------------------------------------------------------------------


def session_request(body: bytes) -> str | None:
    """``requestType`` of a session request (a JSON object that has one), else None. Cheap for
    ordinary bodies: only a small body mentioning ``requestType`` is parsed."""
    if len(body) > _SESSION_REQUEST_LIMIT or b"requestType" not in body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or "requestType" not in value:
        return None
    kind = value["requestType"]
    return kind if isinstance(kind, str) else ""


def handle_stateful(app: App, exchange: Exchange, model: Model, item: Inference) -> bool:
    """Serve ``item`` under the session rules; False when it is an ordinary request."""
    request = exchange.request
    assert request is not None
    kind = session_request(request.body)
    session_id = request.header(s.SESSION_HEADER)
    if kind is None and session_id is None:
        return False
    group = model.group
    if kind == "NEW_SESSION":
        session = group.new_sticky_session()
        if session is None:
            exchange.respond_error(503, "ServiceUnavailableException",
                                   f"Model {model.name} cannot open more sessions "
                                   f"({group.spec.max_sessions} open, or no worker ready).")
            return True
        value = f"{session.session_id}; Expires={session.expires_header}".encode()
        exchange.respond_json(200, {"sessionId": session.session_id, "expiresAt": session.expires_header},
                              extra=((s.NEW_SESSION_HEADER, value), (b"X-Amzn-SageMaker-Session-Id", value)))
        return True
    if kind is not None and kind != "CLOSE":
        exchange.respond_error(400, "BadRequestException",
                               f"Unknown requestType {kind!r}: a session request is NEW_SESSION or CLOSE.")
        return True
    found = _session(app, exchange, group, session_id)
    if found is None:
        return True
    if kind == "CLOSE":
        def done(status: int, message: str) -> None:
            if status == 400:
                _lost(exchange)
            else:
                exchange.respond_json(200, {"closedSessionId": found.session_id},
                                      extra=((s.CLOSED_SESSION_HEADER, found.session_id.encode()),))

        group.close_sticky_session(found, done)
        return True
    if not group.submit_pinned(item, found):
        exchange.respond_error(503, "ServiceUnavailableException", "The session's worker has too many queued requests.")
    return True


def _session(app: App, exchange: Exchange, group: WorkerGroup, session_id: bytes | None) -> s.StickySession | None:
    if not session_id:
        exchange.respond_error(400, "BadRequestException",
                               "A CLOSE session request needs the X-Amzn-SageMaker-Session-Id header.")
        return None
    found = group.sessions.get(session_id.decode("latin-1").strip(), time.monotonic())
    if found is None:
        exchange.respond_error(400, "BadRequestException",
                               "Unknown or expired session id; start one with {\"requestType\": \"NEW_SESSION\"}.")
        return None
    if found.lost:
        _lost(exchange)
        return None
    return found


def _lost(exchange: Exchange) -> None:
    exchange.respond_error(400, "BadRequestException",
                           "session lost: the worker that held its state died; start a new session")
