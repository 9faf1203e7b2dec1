"""The asyncio adapter: bytes from a socket into the assembler, requests to the handler, responses
back in request order. It knows nothing of the application: the server hands it a ``ServerState``
(the request handler, the limits, the draining flag) and gets ``Exchange`` objects back.

Theory of a connection (every rule is there so that no request is lost and none can starve others):

* Pipelining: every request gets an ``Exchange`` in the connection's FIFO as soon as it is
  dispatched; responses may complete in any order (different workers) but are written strictly
  from the head.
* At most ``MAX_OUTSTANDING`` exchanges per connection. Requests parsed beyond it wait, undispatched,
  in the connection's backlog and reading pauses; both resume when half the responses are written.
  So one client pipelining thousands of requests holds 64 places in the shared job queue, not all.
* Reading also pauses while the transport's write buffer is full: a client that pipelines without
  reading cannot grow our memory.
* Half-close: a client may shut down its sending side after its requests (``nc -N``, some proxies).
  Every complete request received before the EOF is answered, then the connection is closed.
* ``Expect: 100-continue`` behind pipelined requests: the interim ``100 Continue`` is written when the
  responses before it have been (it must not overtake them).
* Read timeout: a request must arrive within ``read_timeout`` seconds, plus one second per
  ``MIN_BODY_RATE`` bytes of body received, and with no gap of ``read_timeout`` between reads; else
  408 and close. Time while we are not reading (paused) does not count. So slow-header and
  slow-body clients are cut off, a big body at any ordinary rate is not.
* A refused request (``ParseError``, timeout) is answered after the responses before it; then the
  connection is closed: the byte stream can no longer be trusted. The close lingers (we stop
  writing, discard what the client still sends, for up to ``LINGER_SECONDS``) so that a client
  still sending the body we refused reads our answer instead of a reset.
* Budget: the bytes a request holds (``HTTPRequest.held``) are released when it is answered (a
  streamed answer: when its head is known) or its client leaves; a request that leaves also drops
  its body at once, wherever it waits.

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
from typing import TYPE_CHECKING, Callable, Protocol

from sagemaker_inference.server.http import response as r
from sagemaker_inference.server.http.parser import (
    Budget,
    ContinueRequested,
    Event,
    HTTPRequest,
    ParseError,
    RequestAssembler,
)

if TYPE_CHECKING:
    from sagemaker_inference.server.http.websocket import WebSocketConnection
    from sagemaker_inference.server.workers.protocol import RenderedResponse, Response

logger = logging.getLogger("sagemaker_inference.server")

MAX_OUTSTANDING = 64
MIN_BODY_RATE = 1024  # bytes per second a body must average (after the first read_timeout seconds)
LINGER_SECONDS = 5.0

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


class Job(Protocol):
    """What the handler made of a request (an inference waiting for its model): it holds the body."""

    body: bytes


class ServerState:
    """What the connections of one server share: the request handler, the limits, the draining flag
    and the open connections. ``handle`` is called with every request's ``Exchange``."""

    def __init__(self, handle: Callable[[Exchange], None], *, max_body: int, budget: int,
                 read_timeout: float = 60.0, access_log: bool = False, max_connections: int = 1 << 30,
                 id_header: bytes = b""):
        self.handle = handle
        self.id_header = id_header  # see ``RequestAssembler``
        self.max_body = max_body
        self.max_connections = max_connections
        self.budget = Budget(budget)
        self.read_timeout = read_timeout
        self.access_log = access_log
        self.draining = False
        self.connections: set[HTTPConnection] = set()
        self.websockets: set[WebSocketConnection] = set()  # connections upgraded to WebSocket

    def connection(self) -> HTTPConnection:
        """The protocol factory for ``loop.create_server``."""
        return HTTPConnection(self)

    def sweep(self, now: float) -> None:
        """Time out requests that arrive too slowly and lingering closes (called twice a second)."""
        timeout = self.read_timeout
        for connection in [c for c in self.connections if c.partial_since is not None or c.lingering]:
            connection.check_timeouts(now, timeout)

    def close_idle(self) -> None:
        """Draining: idle connections close; WebSocket sessions are asked to go (1001)."""
        for websocket in list(self.websockets):
            websocket.close_if_idle()
        for connection in list(self.connections):
            connection.close_if_idle()

    def make_room(self, newcomer: HTTPConnection) -> None:
        """Over ``max_connections``: close a connection that is idle between requests, else refuse
        the newcomer (503). So idle connections cannot exhaust the file descriptors and lock
        everyone else out; no connection that is owed an answer is ever cut."""
        fresh = None  # one that has not sent a request yet: closed only if no other is idle (it may be sending)
        for connection in self.connections:
            if connection is not newcomer and connection.idle:
                if connection.requests:
                    connection.close()
                    return
                fresh = fresh or connection
        if fresh is not None:
            fresh.close()
            return
        newcomer.refuse(ParseError(503, f"Too many connections (SAGEMAKER_MAX_CONNECTIONS={self.max_connections}); "
                                        "retry later.", "ServiceUnavailableException", ((b"retry-after", b"1"),)))


class Exchange:
    """One request and, once known, its response bytes."""

    __slots__ = ("connection", "request", "request_id", "data", "close", "cancelled", "started", "held", "job",
                 "observer", "_keep_alive", "stream", "parts", "finished", "_head", "_unacked", "_owed")

    def __init__(self, connection: HTTPConnection, request: HTTPRequest | None):
        self.connection = connection
        self.request = request
        self.request_id = b""
        self.data: bytes | None = None
        self.close = False
        self.cancelled = False
        self.started = time.monotonic()
        self.held = request.held if request is not None else 0
        self.job: Job | None = None
        self.observer: Observer | None = None  # told when an inference result is delivered (metrics, tracing)
        self._keep_alive = request is not None and request.keep_alive
        self.stream: StreamProducer | None = None  # a streamed body: its producer, its pieces
        self.parts: list[bytes] | None = None
        self.finished = False

    @property
    def keep_alive(self) -> bool:
        """The client wants to keep the connection and we are not draining."""
        return self._keep_alive and not self.connection.state.draining

    def _release(self) -> None:
        if self.held:
            self.connection.state.budget.release(self.held)
            self.held = 0

    def respond(self, data: bytes, close: bool = False) -> None:
        if self.data is not None:
            return
        self.job = None  # it points back at us (its sink): without this, every request is a reference cycle
        if self.held:
            self.connection.state.budget.held -= self.held
            self.held = 0
        if self.request is not None and self.request.method == b"HEAD":
            # Same head as GET, no body (RFC 9110 §9.3.2): a body here would be read as the next response.
            data = data[:data.index(b"\r\n\r\n") + 4]
        self.data = data
        self.close = close or not self.keep_alive
        self.connection.flush()

    def cancel(self) -> None:
        """The client left: nobody will read the answer. Give back the budget and drop the body now,
        even if the job still waits in a queue (it is skipped there)."""
        self.cancelled = True
        self._release()
        if self.stream is not None:
            self.stream.cancel()
        if self.request is not None:
            self.request.body = b""
        if self.job is not None:
            self.job.body = b""
            self.job = None

    def respond_json(self, status: int, payload: object, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.request_id = self.request_id or next_request_id()
        self.respond(r.render_json(status, payload, keep_alive=self.keep_alive, request_id=self.request_id,
                                   extra=extra))

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
        self._release()  # the request's body went to the worker; what is held now is the producer's window
        self.job = None
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
    def __init__(self, state: ServerState):
        self.state = state
        self.assembler = RequestAssembler(state.max_body, budget=state.budget, id_header=state.id_header)
        self.transport: asyncio.Transport | None = None
        self.outstanding: deque[Exchange] = deque()
        self.backlog: deque[Event] = deque()  # parsed, not dispatched yet (MAX_OUTSTANDING reached)
        self.requests = 0  # dispatched so far
        self.partial_since: float | None = None  # when the request being received started arriving
        self.last_read = 0.0
        self.closed = False
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False
        self._continue_pending = False
        self._in_backlog = False
        self._lingering_since: float | None = None

    # -- asyncio callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        connections = self.state.connections
        connections.add(self)
        if len(connections) > self.state.max_connections:
            self.state.make_room(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        self._abandon()

    def data_received(self, data: bytes) -> None:
        if self._lingering_since is not None:
            return  # discarding what follows a refused request
        events = self.assembler.feed(data)
        if events:
            # Start each request, or keep it in the backlog (in order) while MAX_OUTSTANDING are owed.
            outstanding, backlog = self.outstanding, self.backlog
            for event in events:
                if backlog or len(outstanding) >= MAX_OUTSTANDING:
                    backlog.append(event)
                elif type(event) is HTTPRequest:
                    self._begin(event)
                elif not self._start(event):
                    return
            if backlog or len(outstanding) >= MAX_OUTSTANDING:
                self._pause_reading()
        if self.assembler.idle:
            self.partial_since = None
        else:
            self.last_read = now = time.monotonic()
            if self.partial_since is None or events:
                self.partial_since = now

    def eof_received(self) -> bool:
        """The client will send no more. Keep the transport open for the answers still owed, then close."""
        self._eof = True
        if self._lingering_since is not None or not (self.outstanding or self.backlog):
            return False
        self.partial_since = None
        return True

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self.flush()

    # -- requests in, responses out -------------------------------------------------------------

    def _begin(self, request: HTTPRequest) -> None:
        """Give ``request`` its place in the FIFO and hand it to the app."""
        if request.expect_continue:
            self._continue_pending = False  # its body came anyway
        exchange = Exchange(self, request)
        self.outstanding.append(exchange)
        self.requests += 1
        if request.upgrade:
            self._pause_reading()  # what follows is not HTTP: wait for the app's decision
            exchange.close = True
        self.state.handle(exchange)

    def _start(self, event: Event) -> bool:
        """Act on an event other than a request; False once the connection refused one."""
        if isinstance(event, ContinueRequested):
            if self.outstanding:
                self._continue_pending = True  # written when the responses before it are (see flush)
            elif self.transport is not None:
                self.transport.write(r.CONTINUE)
        elif isinstance(event, ParseError):
            self._refuse(event)
            return False
        return True

    def _dispatch_backlog(self) -> None:
        backlog = self.backlog
        self._in_backlog = True
        try:
            while backlog and len(self.outstanding) < MAX_OUTSTANDING and not self.closed:
                event = backlog.popleft()
                if type(event) is HTTPRequest:
                    self._begin(event)
                elif not self._start(event):
                    return
        finally:
            self._in_backlog = False

    def refuse(self, error: ParseError) -> None:
        self._refuse(error)

    def _refuse(self, error: ParseError) -> None:
        """Answer ``error`` after the responses before it, then close (lingering)."""
        self.assembler.abort()
        self._drop_backlog()
        self.partial_since = None
        exchange = Exchange(self, None)
        self.outstanding.append(exchange)
        self._pause_reading()
        exchange.respond(r.render_error(error.status, error.error_type, error.message, keep_alive=False,
                                        extra=error.headers), close=True)

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
            if self.state.access_log:
                self._log_access(exchange)
            if exchange.close:
                self._linger() if exchange.request is None else self.close()
                return
        if (self._reading_paused or self._eof or self._continue_pending) and len(outstanding) < MAX_OUTSTANDING // 2:
            self._after_flush(transport)

    def _after_flush(self, transport: asyncio.Transport) -> None:
        """Half the answers are out and something waits for it: the backlog (which exists only while
        reading is paused), the close after a half-close, an owed ``100 Continue``, reading."""
        outstanding = self.outstanding
        if self.backlog and not self._in_backlog:
            self._dispatch_backlog()
            if self.closed:
                return
        if self._eof and not outstanding and not self.backlog:
            self.close()
            return
        if self._continue_pending and not outstanding:
            self._continue_pending = False
            transport.write(r.CONTINUE)
        if self._reading_paused and not self._writing_paused and not self.backlog and not self._eof:
            self._reading_paused = False
            if self.partial_since is not None:
                self.partial_since = self.last_read = time.monotonic()  # paused time does not count
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
        access_logger.info('%s "%s" %s %.1f ms', where, line, status, (time.monotonic() - exchange.started) * 1000,
                           extra={"request_id": request_id, "model": getattr(exchange.observer, "model", None)})

    # -- timeouts and closing -------------------------------------------------------------------

    @property
    def lingering(self) -> bool:
        return self._lingering_since is not None

    @property
    def idle(self) -> bool:
        """Open, owed nothing, nothing partly received: closing it loses nothing."""
        return (not self.closed and self._lingering_since is None and not self.outstanding and not self.backlog
                and self.assembler.idle)

    @property
    def owes(self) -> bool:
        """Responses still to be written."""
        return bool(self.outstanding or self.backlog)

    @property
    def receiving(self) -> bool:
        """A request may be on its way: one is partly received, or none has been sent yet."""
        if self.closed or self._eof or self._lingering_since is not None or self.assembler.failed:
            return False
        return not self.requests or not self.assembler.idle

    def check_timeouts(self, now: float, timeout: float) -> None:
        if self._lingering_since is not None:
            if now - self._lingering_since > LINGER_SECONDS:
                self.close()
            return
        since = self.partial_since
        if since is None or self._reading_paused:
            return
        allowed = timeout + self.assembler.body_received / MIN_BODY_RATE
        if now - since > allowed or now - self.last_read > timeout:
            self._refuse(ParseError(408, f"The request did not arrive within the read timeout ({timeout:g} s; "
                                         "SAGEMAKER_REQUEST_READ_TIMEOUT).", "RequestTimeoutException"))

    def _linger(self) -> None:
        """Close after a refusal: stop writing, read and drop what the client still sends, close at
        its EOF or after ``LINGER_SECONDS`` (``check_timeouts``)."""
        transport = self.transport
        if transport is None or self.closed:
            return
        self._abandon()
        if self._eof or not transport.can_write_eof():
            self.close()
            return
        self._lingering_since = time.monotonic()
        transport.write_eof()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self._abandon()
            self.transport.close()

    def switch_to_websocket(self, exchange: Exchange, websocket: WebSocketConnection) -> bool:
        """Hand the connection over to ``websocket`` (after the app accepted the upgrade in
        ``exchange``, the last request the parser gave us). False if that cannot be done now:
        responses to earlier pipelined requests are still pending."""
        transport = self.transport
        if transport is None or self.closed or not self.outstanding or self.outstanding[0] is not exchange:
            return False
        exchange._release()
        self.outstanding.clear()
        self.closed = True
        self.state.connections.discard(self)
        transport.set_protocol(websocket)
        websocket.connection_made(transport)
        websocket.start(self.assembler.upgrade_rest)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        return True

    def close_if_idle(self) -> None:
        """Close if nothing is owed or arriving; a connection that never sent a request is kept
        (its first one may be on its way: see the supervisor's drain)."""
        if not self.outstanding and self.assembler.idle and not self.backlog and self.requests:
            self.close()

    def _abandon(self) -> None:
        for exchange in self.outstanding:
            exchange.cancel()
        self.outstanding.clear()
        self._drop_backlog()
        self.assembler.abort()

    def _drop_backlog(self) -> None:
        budget = self.state.budget
        for event in self.backlog:
            if type(event) is HTTPRequest:
                budget.release(event.held)
        self.backlog.clear()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
