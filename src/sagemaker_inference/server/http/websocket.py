"""A WebSocket connection after the HTTP upgrade: wsproto (sans-IO) driven by an asyncio protocol.

wsproto does all of RFC 6455: the handshake, framing, masking, fragmentation, UTF-8 checks of
text, ping/pong and the close handshake; this module only moves bytes between it and the
transport and enforces our limits. The HTTP layer knows nothing of models: whoever accepts the
upgrade attaches a ``WebSocketHandler`` that gets whole messages and the close.

Rules:

* a message is delivered whole (fragments reassembled) once its last frame has arrived; one over
  ``max_message`` bytes closes the connection with 1009 as soon as it passes the limit (nothing
  more is buffered); invalid UTF-8 in a text message closes with 1007 (wsproto finds it);
* pings are answered; a peer silent for ``ping_interval`` is pinged, one silent for two intervals
  is gone (closed with 1011, then the socket);
* inbound flow: the handler may ``pause_reading`` (its consumer is behind) and resume later;
* outbound flow: each message written while the transport is not paused is reported
  ``consumed`` to the handler at once; while paused, the count waits for ``resume_writing``;
* after we send a Close, the peer gets ``CLOSE_GRACE`` seconds to answer it before the socket is
  closed anyway; after the peer's Close we answer and close the socket (the server closes first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from sagemaker_inference.server.http.parser import HTTPRequest

logger = logging.getLogger("sagemaker_inference.server")

CLOSE_GRACE = 5.0
CLOSE_TOO_BIG, CLOSE_ERROR, CLOSE_GOING_AWAY, CLOSE_ABNORMAL = 1009, 1011, 1001, 1006


class WebSocketHandler(Protocol):
    """The application side of one WebSocket session."""

    def client_message(self, data: bytes, binary: bool) -> None: ...

    def client_closed(self, code: int) -> None: ...

    def consumed(self, messages: int = 1) -> None: ...


class HandshakeError(Exception):
    """The upgrade request is not a valid WebSocket handshake (answer 400)."""


def handshake(request: HTTPRequest) -> WSConnection:
    """A server-side wsproto connection that has read ``request``'s handshake (wsproto checks the
    version, key and headers); ``HandshakeError`` when it is not a valid one."""
    target = request.path + (b"?" + request.query if request.query else b"")
    head = b"".join([b"GET ", target, b" HTTP/1.1\r\n", *[b"%s: %s\r\n" % pair for pair in request.headers], b"\r\n"])
    connection = WSConnection(ConnectionType.SERVER)
    try:
        connection.receive_data(head)
        events = list(connection.events())
    except RemoteProtocolError as exc:
        raise HandshakeError(f"Invalid WebSocket handshake: {exc}") from None
    if not any(isinstance(event, Request) for event in events):
        raise HandshakeError("Invalid WebSocket handshake.")
    return connection


class WebSocketConnection(asyncio.Protocol):
    """One accepted WebSocket: bytes <-> wsproto <-> the handler."""

    def __init__(self, connection: WSConnection, max_message: int, ping_interval: float,
                 registry: set[WebSocketConnection] | None = None):
        self.ws = connection
        self.max_message, self.ping_interval = max_message, ping_interval
        self.handler: WebSocketHandler | None = None
        self.transport: asyncio.Transport | None = None
        self._registry = registry if registry is not None else set()
        self._parts: list[bytes] = []
        self._size = 0
        self._heard = True  # something arrived since the last keep-alive check
        self._pinged = False
        self._writing_paused = False
        self._owed = 0
        self._closed_reported = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    def attach(self, handler: WebSocketHandler) -> None:
        self.handler = handler

    # -- asyncio ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._registry.add(self)

    def start(self, rest: bytes) -> None:
        """Send the 101 answer, then read what the client sent after its handshake."""
        self._write(self.ws.send(AcceptConnection()))
        self._ping_timer = _later(self.ping_interval, self._keepalive)
        if rest:
            self.data_received(rest)

    def data_received(self, data: bytes) -> None:
        self._heard = True
        try:
            self.ws.receive_data(data)
            for event in self.ws.events():
                self._on_event(event)
        except (RemoteProtocolError, LocalProtocolError) as exc:
            logger.warning("WebSocket protocol error: %s", exc)
            self._abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.discard(self)
        for timer in (self._ping_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._report_closed(CLOSE_ABNORMAL)
        self.transport = None

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._owed and self.handler is not None:
            owed, self._owed = self._owed, 0
            self.handler.consumed(owed)

    # -- events from the client ------------------------------------------------------------------

    def _on_event(self, event: object) -> None:
        if isinstance(event, (TextMessage, BytesMessage)):
            self._on_message(event)
        elif isinstance(event, Ping):
            self._write(self.ws.send(event.response()))
        elif isinstance(event, Pong):
            self._pinged = False
        elif isinstance(event, CloseConnection):
            self._on_close(event)

    def _on_message(self, event: Message) -> None:
        if self.ws.state != ConnectionState.OPEN:
            return
        part = event.data.encode("utf-8") if isinstance(event, TextMessage) else bytes(event.data)
        self._size += len(part)
        if self._size > self.max_message:
            self._parts.clear()
            self.close(CLOSE_TOO_BIG, f"message over {self.max_message} bytes")
            self._report_closed(CLOSE_TOO_BIG)
            return
        self._parts.append(part)
        if event.message_finished:
            data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts.clear()
            self._size = 0
            if self.handler is not None:
                self.handler.client_message(data, isinstance(event, BytesMessage))

    def _on_close(self, event: CloseConnection) -> None:
        if self.ws.state == ConnectionState.OPEN:
            # wsproto found a protocol error (1002) or invalid UTF-8 (1007): it is ours to close.
            self.close(event.code, event.reason or "")
        elif self.ws.state == ConnectionState.REMOTE_CLOSING:
            self._write(self.ws.send(event.response()))
            self._close_transport()
        else:  # the answer to our Close
            self._close_transport()
        self._report_closed(int(event.code))

    # -- what the application does ---------------------------------------------------------------

    def send_message(self, data: bytes, binary: bool) -> None:
        if self.ws.state != ConnectionState.OPEN:
            return
        message = BytesMessage(data=data) if binary else TextMessage(data=data.decode("utf-8", "replace"))
        self._write(self.ws.send(message))
        if self.handler is None:
            return
        if self._writing_paused:
            self._owed += 1
        else:
            self.handler.consumed(1)

    def close(self, code: int, reason: str = "") -> None:
        """Start the close handshake (no-op once closing)."""
        if self.ws.state != ConnectionState.OPEN:
            return
        reason = reason.encode()[:120].decode("utf-8", "ignore")
        self._write(self.ws.send(CloseConnection(code=code, reason=reason)))
        self._close_timer = _later(CLOSE_GRACE, self._abort)

    def close_if_idle(self) -> None:
        """The server is stopping: ask the client to go."""
        self.close(CLOSE_GOING_AWAY, "server shutting down")

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- helpers -----------------------------------------------------------------------------------

    def _keepalive(self) -> None:
        if self.ws.state != ConnectionState.OPEN:
            return
        if self._heard:
            self._heard, self._pinged = False, False
        elif self._pinged:
            logger.warning("WebSocket peer silent for %g s; closing it", 2 * self.ping_interval)
            self.close(CLOSE_ERROR, "keepalive ping timeout")
            self._report_closed(CLOSE_ERROR)
            return
        else:
            self._pinged = True
            self._write(self.ws.send(Ping()))
        self._ping_timer = _later(self.ping_interval, self._keepalive)

    def _report_closed(self, code: int) -> None:
        if not self._closed_reported:
            self._closed_reported = True
            if self.handler is not None:
                self.handler.client_closed(code)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and data:
            self.transport.write(data)

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()



def _later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback)
