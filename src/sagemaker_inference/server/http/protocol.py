"""The asyncio adapter: bytes from a socket into the assembler, requests to the app, responses
back in request order.

Pipelining: every request gets an ``Exchange`` in the connection's FIFO as soon as it is parsed;
responses may complete in any order (different workers) but are written strictly from the head.
Reading pauses while too many responses are outstanding or the transport's buffer is full, so a
client that pipelines without reading cannot grow our memory.

A ``ParseError`` is answered, then the connection is closed: the byte stream cannot be trusted.

Streamed responses: an exchange whose body is streamed holds the head of the FIFO until its last
chunk; its chunks are written as they come, and each chunk handed to a transport that is not
paused is credited back to the stream's producer (``consumed``); while the transport is paused
the credit is withheld and granted on ``resume_writing``. So a slow reader stops the producer,
and what waits here is bounded by the producer's window. A stream that fails after its head was
sent ends without the last chunk and the connection is closed: the client sees a truncated body,
never a clean end of a partial answer.

A WebSocket upgrade (``HTTPRequest.upgrade``) ends HTTP on the connection: the app either answers
it with an error (and the connection closes) or calls ``switch_to_websocket``, which hands the
transport and the bytes after the request to ``http/websocket.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from sagemaker_inference.server.http import response as r
from sagemaker_inference.server.http.parser import ContinueRequested, HTTPRequest, ParseError, RequestAssembler

if TYPE_CHECKING:
    from sagemaker_inference.server.app import App
    from sagemaker_inference.server.http.websocket import WebSocketConnection
    from sagemaker_inference.server.workers.protocol import RenderedResponse, Response

logger = logging.getLogger("sagemaker_inference.server")

MAX_OUTSTANDING = 64

access_logger = logging.getLogger("sagemaker_inference.access")

_ID_PREFIX = b"%08x-%04x-4%03x-%04x-" % (
    int.from_bytes(os.urandom(4), "big"), int.from_bytes(os.urandom(2), "big"),
    int.from_bytes(os.urandom(2), "big") & 0xFFF, 0x8000 | (int.from_bytes(os.urandom(2), "big") & 0x3FFF))
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


def next_request_id() -> bytes:
    """UUID-shaped and unique per server run, without a syscall per request (uuid4 costs one)."""
    return b"%s%012x" % (_ID_PREFIX, next(_counter) & 0xFFFFFFFFFFFF)


class Observer(Protocol):
    def finished(self, status: int, arrived: float) -> None: ...


class StreamProducer(Protocol):
    """Whoever produces a streamed body (``workers.streams.Stream``)."""

    def consumed(self, chunks: int = 1) -> None: ...

    def cancel(self) -> None: ...


class Exchange:
    """One request and, once known, its response bytes."""

    __slots__ = ("connection", "request", "request_id", "data", "close", "cancelled", "started", "observer",
                 "_keep_alive", "stream", "parts", "finished", "_head", "_unacked", "_owed")

    def __init__(self, connection: HTTPConnection, request: HTTPRequest | None):
        self.connection = connection
        self.request = request
        self.request_id = b""
        self.data: bytes | None = None
        self.close = False
        self.cancelled = False
        self.started = time.monotonic()
        self.observer: Observer | None = None  # told when an inference result is delivered (metrics, tracing)
        self._keep_alive = request is not None and request.keep_alive
        self.stream: StreamProducer | None = None  # a streamed body: its producer, its pieces
        self.parts: list[bytes] | None = None
        self.finished = False

    @property
    def keep_alive(self) -> bool:
        """The client wants to keep the connection and we are not draining."""
        return self._keep_alive and not self.connection.app.draining

    def respond(self, data: bytes, close: bool = False) -> None:
        if self.data is not None:
            return
        if self.request is not None and self.request.method == b"HEAD":
            # Same head as GET, no body (RFC 9110 §9.3.2): a body here would be read as the next response.
            data = data[:data.index(b"\r\n\r\n") + 4]
        self.data = data
        self.close = close or not self.keep_alive
        self.connection.flush()

    def respond_json(self, status: int, payload: object) -> None:
        self.request_id = self.request_id or next_request_id()
        self.respond(r.render_json(status, payload, keep_alive=self.keep_alive, request_id=self.request_id))

    def respond_error(self, status: int, error_type: str, message: str,
                      extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.request_id = self.request_id or next_request_id()
        self.respond(r.render_error(status, error_type, message, keep_alive=self.keep_alive, extra=extra,
                                    request_id=self.request_id))

    def deliver(self, response: Response | RenderedResponse) -> None:
        """An inference result from a worker (the pool's ``Sink`` contract)."""
        if self.observer is not None:
            self.observer.finished(response.status, self.started)
        keep_alive = self.keep_alive
        self.respond(r.render_lines(response.status, response.reason, response.header_lines, response.body,
                                    keep_alive=keep_alive, request_id=self.request_id), close=not keep_alive)

    # -- streamed bodies (the pool's ``StreamSink`` contract) -------------------------------------

    def start_stream(self, head: RenderedResponse, stream: StreamProducer) -> None:
        """The head is known; it is sent with the first chunk (or replaced by an error response
        if the stream fails before it has one)."""
        if self.data is not None:
            stream.cancel()
            return
        keep_alive = self.keep_alive
        self.stream, self.parts, self._unacked, self._owed = stream, [], 0, 0
        self._head: bytes | None = r.render_stream_head(head.status, head.reason, head.header_lines,
                                                        keep_alive=keep_alive, request_id=self.request_id)
        self.close = not keep_alive
        if self.observer is not None:
            self.observer.finished(head.status, self.started)

    def stream_data(self, data: bytes) -> None:
        parts = self.parts
        if parts is None or self.finished:
            return
        piece = r.chunk(data)
        if self._head is not None:
            piece, self._head = self._head + piece, None
        parts.append(piece)
        self._unacked += 1
        self.connection.flush()

    def end_stream(self, status: int = 0, error_type: str = "", message: str = "") -> None:
        """A clean end (``status`` 0) writes the last chunk; a failure before the first chunk is an
        ordinary error response; after it, the body ends abnormally and the connection closes."""
        parts = self.parts
        if parts is None or self.finished:
            return
        if not status:
            parts.append((self._head or b"") + r.LAST_CHUNK)
            self._head = None
        elif self._head is not None:
            self.parts = self.stream = None
            self.respond_error(status, error_type, message)
            return
        else:
            logger.warning("request %s: the streamed body ended abnormally: %s", self.request_id.decode(), message)
            self.close = True
        self.finished = True
        self.connection.flush()

    def write_stream(self, transport: asyncio.Transport, writable: bool) -> bool:
        """Write what the stream has; credit what reached a writable transport. True once finished."""
        parts = self.parts
        assert parts is not None
        if parts:
            transport.write(parts[0] if len(parts) == 1 else b"".join(parts))
            parts.clear()
            self._owed += self._unacked
            self._unacked = 0
        if self._owed and writable and self.stream is not None and not self.finished:
            owed, self._owed = self._owed, 0
            self.stream.consumed(owed)
        return self.finished


class HTTPConnection(asyncio.Protocol):
    def __init__(self, app: App):
        self.app = app
        self.assembler = RequestAssembler(app.config.max_request_size)
        self.transport: asyncio.Transport | None = None
        self.outstanding: deque[Exchange] = deque()
        self.partial_since: float | None = None
        self._reading_paused = False
        self._writing_paused = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.app.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.app.connections.discard(self)
        self._cancel_outstanding()

    def _cancel_outstanding(self) -> None:
        for exchange in self.outstanding:
            exchange.cancelled = True
            if exchange.stream is not None:
                exchange.stream.cancel()
        self.outstanding.clear()

    def data_received(self, data: bytes) -> None:
        for event in self.assembler.feed(data):
            if isinstance(event, HTTPRequest):
                exchange = Exchange(self, event)
                self.outstanding.append(exchange)
                if event.upgrade:
                    self._pause_reading()  # what follows is not HTTP: wait for the app's decision
                    exchange.close = True
                self.app.handle(exchange)
            elif isinstance(event, ContinueRequested):
                if not self.outstanding and self.transport is not None:
                    self.transport.write(r.CONTINUE)
            elif isinstance(event, ParseError):
                self._refuse(event)
                return
        if self.assembler.idle:
            self.partial_since = None
        elif self.partial_since is None:
            self.partial_since = time.monotonic()
        if len(self.outstanding) >= MAX_OUTSTANDING:
            self._pause_reading()

    def _refuse(self, error: ParseError) -> None:
        exchange = Exchange(self, None)
        self.outstanding.append(exchange)
        self._pause_reading()
        error_type = "RequestEntityTooLargeException" if error.status == 413 else "BadRequestException"
        exchange.respond(r.render_error(error.status, error_type, error.message, keep_alive=False), close=True)

    def flush(self) -> None:
        transport = self.transport
        outstanding = self.outstanding
        if transport is None or self.closed:
            return
        while outstanding:
            exchange = outstanding[0]
            if exchange.data is not None:
                transport.write(exchange.data)
            elif exchange.parts is None or not exchange.write_stream(transport, not self._writing_paused):
                break
            outstanding.popleft()
            if self.app.access_log:
                self._log_access(exchange)
            if exchange.close:
                self.close()
                return
        if self._reading_paused and len(outstanding) < MAX_OUTSTANDING // 2 and not self._writing_paused:
            self._reading_paused = False
            transport.resume_reading()

    def _log_access(self, exchange: Exchange) -> None:
        """MMS's access line: peer, request line, status, milliseconds."""
        request = exchange.request
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "-"
        line = (f"{request.method.decode('latin-1')} {request.path.decode('latin-1')}" if request is not None
                else "(unparsable request)")
        status = exchange.data[9:12].decode("latin-1") if exchange.data else "stream"
        request_id = exchange.request_id.decode("latin-1") or "-"
        access_logger.info('%s "%s" %s %.1f ms %s', where, line, status, (time.monotonic() - exchange.started) * 1000,
                           request_id, extra={"request_id": request_id,
                                              "model": getattr(exchange.observer, "model", None)})

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self._cancel_outstanding()
            self.transport.close()

    def switch_to_websocket(self, exchange: Exchange, websocket: WebSocketConnection) -> bool:
        """Hand the connection over to ``websocket`` (after the app accepted the upgrade in
        ``exchange``, the last request the parser gave us). False if that cannot be done now:
        responses to earlier pipelined requests are still pending."""
        transport = self.transport
        if transport is None or self.closed or not self.outstanding or self.outstanding[0] is not exchange:
            return False
        self.outstanding.clear()
        self.closed = True
        self.app.connections.discard(self)
        transport.set_protocol(websocket)
        websocket.connection_made(transport)
        websocket.start(self.assembler.upgrade_rest)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        return True

    def close_if_idle(self) -> None:
        if not self.outstanding and self.assembler.idle:
            self.close()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self.flush()
