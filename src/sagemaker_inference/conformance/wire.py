"""Raw-socket HTTP/1.1 for probing: send any bytes, half-close, read responses as the server framed them.

The kit has to send what no HTTP client library will (malformed and smuggling requests, partial heads,
half-closed connections), so requests are bytes. Responses are parsed with httptools' response parser (the
server may frame them with Content-Length, chunked or close-delimited bodies, and may send ``100 Continue``).

A read ends in a :class:`Response` or in :class:`NoResponse` naming why: the peer closed (``closed``), reset
(``reset``), or said nothing before the deadline (``timeout``). Probes classify both into an outcome class.
"""

from __future__ import annotations

import collections
import socket
import time
from dataclasses import dataclass, field

import httptools


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; repeated names joined with ", "
    body: bytes = b""
    elapsed: float = 0.0  # seconds from the read's start to the complete response

    @property
    def klass(self) -> str:
        """``1xx`` ... ``5xx``: the outcome class of the status."""
        return f"{self.status // 100}xx"

    def closes(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


class NoResponse(Exception):
    """The connection ended (``closed``, ``reset``) or stalled (``timeout``) before a complete response."""

    def __init__(self, why: str, partial: bytes = b"") -> None:
        super().__init__(why)
        self.why = why
        self.partial = partial

    @property
    def klass(self) -> str:
        return "timeout" if self.why == "timeout" else "close"


class _Reader:
    """Feeds received bytes to httptools and queues complete responses (interim 1xx included)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: collections.deque[Response] = collections.deque()
        self._current: Response | None = None
        self._body: list[bytes] = []
        self.headers_complete = False

    def on_message_begin(self) -> None:
        self._current, self._body, self.headers_complete = Response(0), [], False

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._current is not None
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._current.headers.get(key)
        self._current.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        assert self._current is not None
        self._current.status = self.parser.get_status_code()
        self.headers_complete = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._current is not None
        self._current.body = b"".join(self._body)
        self.done.append(self._current)
        self._current = None

    def finish_at_eof(self) -> bool:
        """A close-delimited body ends at EOF: complete the response in progress if its head was read."""
        if self._current is None or not self.headers_complete:
            return False
        if "content-length" in self._current.headers or "chunked" in self._current.headers.get(
                "transfer-encoding", ""):
            return False
        self.on_message_complete()
        return True


class Connection:
    """One TCP connection to the target. ``timeout`` bounds every single read and write."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        started = time.monotonic()
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.connect_time = time.monotonic() - started
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._reader = _Reader()
        self._raw = bytearray()  # what arrived for the response being read, for NoResponse.partial
        self.eof = False
        self.send_error: str | None = None

    def send(self, data: bytes) -> bool:
        """Send everything; False (and ``send_error`` set) if the peer closed or reset meanwhile."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.send_error = type(exc).__name__
            return False
        except socket.timeout:
            self.send_error = "timeout"
            return False

    def shutdown_write(self) -> None:
        """Half-close: the server sees EOF, the connection stays open for its answers."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def read_response(self, timeout: float | None = None, skip_interim: bool = True) -> Response:
        """The next complete response (``100 Continue`` skipped unless ``skip_interim`` is False)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        started = time.monotonic()
        while True:
            while self._reader.done:
                response = self._reader.done.popleft()
                if skip_interim and 100 <= response.status < 200 and response.status != 101:
                    continue
                response.elapsed = time.monotonic() - started
                self._raw.clear()
                return response
            if self.eof:
                raise NoResponse("closed", bytes(self._raw))
            self._receive(deadline)

    def _receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoResponse("timeout", bytes(self._raw))
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            raise NoResponse("timeout", bytes(self._raw)) from None
        except ConnectionResetError:
            self.eof = True
            raise NoResponse("reset", bytes(self._raw)) from None
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            self.eof = True
            self._reader.finish_at_eof()
            return
        self._raw += chunk
        try:
            self._reader.parser.feed_data(chunk)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError as exc:
            self.eof = True
            raise NoResponse(f"unparsable response ({exc})", bytes(self._raw)) from None

    def closed_by_peer(self, timeout: float) -> bool:
        """True if the server closes (EOF or reset) within ``timeout``; bytes that arrive meanwhile are read."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._receive(deadline)
            except NoResponse as exc:
                return exc.why != "timeout"
        return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None,
            version: str = "HTTP/1.1", length: bool = True) -> bytes:
    """A well-formed request; Content-Length is added for a body or a POST/PUT unless ``length`` is False."""
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(host: str, port: int, data: bytes, timeout: float = 10.0, half_close: bool = False) -> Response:
    """Send ``data`` on a new connection and read one response (raises :class:`NoResponse`)."""
    with Connection(host, port, timeout) as conn:
        sent = conn.send(data)
        if half_close:
            conn.shutdown_write()
        try:
            return conn.read_response()
        except NoResponse as exc:
            if not sent:
                exc.why = f"{exc.why} (send failed: {conn.send_error})"
            raise


def outcome(host: str, port: int, data: bytes, timeout: float = 10.0) -> tuple[str, Response | None, str]:
    """(class, response, why): class is ``2xx``/``4xx``/... for an answer, ``close`` or ``timeout`` otherwise."""
    try:
        response = exchange(host, port, data, timeout)
    except NoResponse as exc:
        return exc.klass, None, exc.why
    except OSError as exc:
        return "close", None, f"connect failed: {exc}"
    return response.klass, response, ""
