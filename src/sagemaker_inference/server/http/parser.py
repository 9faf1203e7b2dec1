"""Sans-IO request assembly: bytes in, complete requests (or a fatal error) out.

httptools (llhttp) does the parsing; this module turns its callbacks into ``HTTPRequest`` objects
and enforces our limits while bytes arrive: a body over ``max_body`` is refused as soon as the
declared ``Content-Length`` or the streamed chunked size passes it (413), without buffering the
rest; oversized or malformed heads are 400/431. After an error the connection must be closed:
the byte stream can no longer be trusted, so ``feed`` returns nothing more.

Pipelining: one ``feed`` can complete several requests; they come back in order.

Upgrade: we switch to one protocol only, WebSocket: a ``GET`` with ``Upgrade: websocket`` comes out
with ``upgrade`` set, and the assembler stops there; what follows it is kept in ``upgrade_rest``
for the WebSocket protocol (or dropped with the connection if the app refuses the upgrade). Any
other ``Upgrade`` is ignored (RFC 9110 §7.8 lets a server ignore it): an ordinary request.
llhttp sees it differently: it ends the message right after the head (httptools tells it to
skip the body) and stops, reporting where the "other protocol" starts. So we read a declared
``Content-Length`` body ourselves (``curl --http2`` sends ``Upgrade: h2c`` on plain-HTTP POSTs)
and resume parsing after it; a chunked body on such a request is refused (400) rather than
guessed at.

Memory budget: every connection's assembler draws on one shared ``Budget`` of request bytes held
at once (being received, queued, in flight). A body is reserved in full as soon as its declared
``Content-Length`` is known, a chunked one as its chunks arrive; a request that would overdraw
the budget is refused with 503 before its body is read. The reservation travels with the request
(``HTTPRequest.held``) and whoever answers it gives it back (``Budget.release``).
"""

from __future__ import annotations

from typing import Union

import httptools

MAX_HEAD_BYTES = 64 * 1024
MIB = 1024 * 1024


class Budget:
    """Request bytes held at once, shared by every connection of a server (see the module docstring)."""

    __slots__ = ("limit", "held")

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0

    def release(self, size: int) -> None:
        self.held -= size

    def refusal(self) -> ParseError:
        return ParseError(503, f"The server is holding {self.held // MIB} MB of request bodies, its limit "
                               f"(SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB={self.limit // MIB}); retry later.",
                          "ServiceUnavailableException", ((b"retry-after", b"1"),))


UNLIMITED = 1 << 62


class HTTPRequest:
    """One complete request. Header names keep the case the client sent (handlers rely on it).
    ``held``: the bytes it holds of the budget, to be released when it is answered. ``id_value``:
    the last value of the assembler's ``id_header``, if the request had one (picked up while the
    headers are parsed, so the request path never scans them again)."""

    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive", "expect_continue", "upgrade", "held",
                 "id_value")

    def __init__(self, method: bytes, path: bytes, query: bytes, headers: list[tuple[bytes, bytes]],
                 body: bytes, keep_alive: bool, held: int = 0):
        self.method, self.path, self.query = method, path, query
        self.headers, self.body, self.keep_alive = headers, body, keep_alive
        self.expect_continue = False
        self.upgrade = False  # a WebSocket upgrade request: nothing after it on the connection is HTTP
        self.held = held
        self.id_value: bytes | None = None

    def header(self, name: bytes) -> bytes | None:
        """The last value of a header, matched case-insensitively (``name`` in lower case)."""
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found


class ContinueRequested:
    """The client sent ``Expect: 100-continue`` and the declared size is within the limit."""

    __slots__ = ()


class ParseError:
    """The request cannot be served; answer ``status`` with ``message`` and close the connection."""

    __slots__ = ("status", "message", "error_type", "headers")

    def __init__(self, status: int, message: str, error_type: str = "BadRequestException",
                 headers: tuple[tuple[bytes, bytes], ...] = ()):
        self.status, self.message, self.error_type, self.headers = status, message, error_type, headers

    def __repr__(self) -> str:
        return f"ParseError({self.status}, {self.message!r})"


Event = Union[HTTPRequest, ContinueRequested, ParseError]


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; carries the error to report."""

    def __init__(self, error: ParseError):
        self.error = error


class RequestAssembler:
    """Feed bytes, get events. One instance per connection. ``id_header`` (lower case): a header
    whose value each request carries as ``HTTPRequest.id_value`` (the client's request id)."""

    def __init__(self, max_body: int, max_head: int = MAX_HEAD_BYTES, budget: Budget | None = None,
                 id_header: bytes = b""):
        self._parser = httptools.HttpRequestParser(self)
        self._max_body, self._max_head = max_body, max_head
        self._id_header, self._id_size = id_header, len(id_header) or -1
        self._budget = budget or Budget(UNLIMITED)
        self._events: list[Event] = []
        self._failed = False
        self._upgrade_body_left = 0
        self._upgraded = False
        self.upgrade_rest = b""  # bytes after a WebSocket upgrade request (the first frames)
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._expect_continue = False
        self._declared: bytes | None = None
        self._id_value: bytes | None = None
        self._head_done = False
        self._held = 0  # of the budget, for this request

    @property
    def body_received(self) -> int:
        """Body bytes of the request being received (for the read timeout's rate allowance)."""
        return self._body_size

    @property
    def failed(self) -> bool:
        """Nothing more will be parsed (an error, a timeout, the connection's end)."""
        return self._failed

    @property
    def idle(self) -> bool:
        """True between requests: no partial request has been received."""
        return not self._url and not self._headers and not self._body

    def feed(self, data: bytes) -> list[Event]:
        while data and not self._failed:
            if self._upgraded:
                self.upgrade_rest += data
                break
            data = self._feed_body(data) if self._upgrade_body_left else self._feed_parser(data)
        events, self._events = self._events, []
        return events

    def _feed_parser(self, data: bytes) -> bytes:
        """Parse ``data``; return what is left unparsed (the bytes after an upgrade request's head)."""
        try:
            self._parser.feed_data(data)
        except _Refused as refused:
            self._fail(refused.error)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause.error if isinstance(cause, _Refused) else ParseError(400, "Invalid HTTP message."))
        except httptools.HttpParserUpgrade as upgrade:
            return data[upgrade.args[0]:]  # not a protocol switch for us: see the module docstring
        except httptools.HttpParserError:
            self._fail(ParseError(400, "Invalid HTTP message."))
        return b""

    def _feed_body(self, data: bytes) -> bytes:
        """The body of an upgrade request, which llhttp left to us; return the bytes after it."""
        chunk, rest = data[:self._upgrade_body_left], data[self._upgrade_body_left:]
        self._upgrade_body_left -= len(chunk)
        self._body_size += len(chunk)
        self._body.append(chunk)
        if not self._upgrade_body_left:
            self._complete()
        return rest

    def _fail(self, error: ParseError) -> None:
        self.abort()
        self._events.append(error)

    def abort(self) -> None:
        """Stop for good (an error, a timeout, the connection's end) and give back what the partial
        request held of the budget."""
        self._budget.release(self._held)
        self._held = 0
        if not self._failed:
            self._failed = True
            del self._parser  # it holds our callbacks: kept, the pair would wait for the garbage collector

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._max_head:
            raise _Refused(ParseError(414, "Request URI too long."))

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp has already refused control characters (NUL included) in names and values,
        # which the worker protocol relies on.
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > self._max_head:
            raise _Refused(ParseError(431, "Request header fields too large."))
        if self._head_done:
            # A chunked body's trailer fields, which httptools reports like headers. They arrive after
            # the head was routed and checked, so they must not override it (a trailer
            # X-Amzn-SageMaker-Target-Model would reroute the request): dropped, as RFC 9110 §6.5.1 allows.
            return
        self._headers.append((name, value))
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self._declared = value
        elif size == 6 and name.lower() == b"expect" and value.strip().lower() == b"100-continue":
            self._expect_continue = True
        elif size == self._id_size and name.lower() == self._id_header:
            self._id_value = value

    def on_headers_complete(self) -> None:
        self._head_done = True
        declared = self._declared
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise _Refused(ParseError(400, "Invalid Content-Length.")) from None
            if size > self._max_body:
                raise _Refused(ParseError(413, _too_large(f"Request body of {size} bytes", self._max_body),
                                          "RequestEntityTooLargeException"))
            budget = self._budget
            if budget.held + size > budget.limit:
                raise _Refused(budget.refusal())
            budget.held += size
            self._held = size
        if self._expect_continue:
            self._events.append(ContinueRequested())

    def on_body(self, body: bytes) -> None:
        size = len(body)
        self._body_size += size
        if self._declared is None:  # chunked: reserved as it arrives
            if self._body_size > self._max_body:
                raise _Refused(ParseError(413, _too_large("Request body", self._max_body),
                                          "RequestEntityTooLargeException"))
            budget = self._budget
            budget.held += size
            self._held += size
            if budget.held > budget.limit:
                raise _Refused(budget.refusal())
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._parser.should_upgrade() and self._upgrade_body_expected():
            return
        self._complete()

    def _upgrade_body_expected(self) -> bool:
        """llhttp skipped the body of this upgrade request: arrange for ``_feed_body`` to read it."""
        if any(name.lower() == b"transfer-encoding" for name, _ in self._headers):
            raise _Refused(ParseError(400, "A chunked body on an Upgrade request is not supported."))
        self._upgrade_body_left = int(self._declared or 0)  # validated in on_headers_complete
        return self._upgrade_body_left > 0

    def _complete(self) -> None:
        url = self._url
        path, _, query = url.partition(b"?")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = HTTPRequest(self._parser.get_method(), path, query, self._headers, body,
                              self._parser.should_keep_alive(), self._held)
        request.expect_continue = self._expect_continue
        request.id_value = self._id_value
        if self._parser.should_upgrade() and request.method == b"GET" and _wants_websocket(self._headers):
            request.upgrade = self._upgraded = True
        self._events.append(request)
        self._reset()


def _wants_websocket(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(len(name) == 7 and name.lower() == b"upgrade" and b"websocket" in value.lower()
               for name, value in headers)


def _too_large(what: str, limit: int) -> str:
    return (f"{what} exceeds the limit of {limit} bytes; raise it with --max-payload-mb or "
            "SAGEMAKER_MAX_PAYLOAD_IN_MB.")
