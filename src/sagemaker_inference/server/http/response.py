"""Rendering responses to bytes. Everything constant is precomputed: this runs per request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus

# Sent on every response MMS builds; clients and proxies may rely on them not caching.
NO_CACHE = (b"Pragma: no-cache\r\nCache-Control: no-cache; no-store, must-revalidate, private\r\n"
            b"Expires: Thu, 01 Jan 1970 00:00:00 UTC\r\n")
KEEP_ALIVE = b"connection: keep-alive\r\n\r\n"
CLOSE = b"connection: close\r\n\r\n"
JSON = b"application/json"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_PHRASES = {s.value: s.phrase.encode() for s in HTTPStatus}
_PHRASES[210] = b"Partial Success"
_STATUS_LINES: dict[tuple[int, bytes], bytes] = {}


def phrase(status: int) -> bytes:
    return _PHRASES.get(status, b"")


def _status_line(status: int, reason: bytes) -> bytes:
    key = (status, reason)
    line = _STATUS_LINES.get(key)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason or _PHRASES.get(status, b""))
        if len(_STATUS_LINES) < 512:
            _STATUS_LINES[key] = line
    return line


def render(status: int, reason: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes, *,
           keep_alive: bool, request_id: bytes = b"") -> bytes:
    """The whole response. A handler's ``reason`` is sent verbatim; an empty one becomes the standard
    phrase (``200 OK``), as MMS's Netty does."""
    lines = b"".join([b"%s: %s\r\n" % pair for pair in headers])
    return render_lines(status, reason, lines, body, keep_alive=keep_alive, request_id=request_id)


def render_lines(status: int, reason: bytes, header_lines: bytes, body: bytes, *, keep_alive: bool,
                 request_id: bytes = b"") -> bytes:
    """``render`` with the handler's headers already rendered as ``name: value\r\n`` lines.
    204 and 304 have neither a body nor a content-length (RFC 9110 §8.6)."""
    length = b"content-length: %d\r\n" % len(body) if status != 204 and status != 304 else b""
    return b"".join((_status_line(status, reason), header_lines,
                     b"x-request-id: %s\r\n" % request_id if request_id else b"", NO_CACHE,
                     length, KEEP_ALIVE if keep_alive else CLOSE, body if length else b""))


CHUNKED = b"transfer-encoding: chunked\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def render_stream_head(status: int, reason: bytes, header_lines: bytes, *, keep_alive: bool,
                       request_id: bytes = b"") -> bytes:
    """The head of a streamed response: chunked, no content-length; the chunks follow."""
    return b"".join((_status_line(status, reason), header_lines,
                     b"x-request-id: %s\r\n" % request_id if request_id else b"", NO_CACHE,
                     CHUNKED, KEEP_ALIVE if keep_alive else CLOSE))


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (``data`` must not be empty: that would end the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def json_body(payload: object) -> bytes:
    """MMS's JSON layout: two-space indent and a trailing newline."""
    return (json.dumps(payload, indent=2) + "\n").encode()


def error_body(status: int, error_type: str, message: str) -> bytes:
    return json_body({"code": status, "type": error_type, "message": message})


def render_json(status: int, payload: object, *, keep_alive: bool, request_id: bytes = b"",
                extra: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    return render(status, phrase(status), [(b"content-type", JSON), *extra], json_body(payload),
                  keep_alive=keep_alive, request_id=request_id)


def render_error(status: int, error_type: str, message: str, *, keep_alive: bool, request_id: bytes = b"",
                 extra: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    return render(status, phrase(status), [(b"content-type", JSON), *extra], error_body(status, error_type, message),
                  keep_alive=keep_alive, request_id=request_id)
