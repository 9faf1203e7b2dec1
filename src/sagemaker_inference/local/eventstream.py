"""AWS event-stream encoding (``application/vnd.amazon.eventstream``), the mirror image of botocore's decoder.

A message is a 12-byte prelude (total length u32, headers length u32, CRC32 of those 8 bytes), the headers, the
payload, and a CRC32 of everything before it.
Each header is its name (u8 length + UTF-8), a type byte and the value; we only ever send strings (type 7,
u16 length + UTF-8), which is all SageMaker's response stream uses.

No Python library exposes an encoder we can use here: awscrt encodes only inside its RPC connection, and AWS's
smithy event-stream package needs Python 3.12. So this module is small, pure and tested against botocore's own
``EventStreamBuffer`` (``tests/unit/local/test_eventstream.py``).
"""

from __future__ import annotations

import json
import struct
from binascii import crc32
from collections.abc import Sequence

PRELUDE_LENGTH = 12
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024  # botocore refuses larger messages
STRING = 7


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
    if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
        raise ValueError(f"event-stream header {name!r} is too long")
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", STRING, len(raw_value)) + raw_value


def encode_message(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """One complete message; ``payload`` must be at most ``MAX_PAYLOAD_LENGTH`` bytes (split larger data)."""
    raw_headers = b"".join(_header(name, value) for name, value in headers)
    if len(raw_headers) > MAX_HEADERS_LENGTH:
        raise ValueError("event-stream headers are too long")
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise ValueError(f"event-stream payload of {len(payload)} bytes is over {MAX_PAYLOAD_LENGTH}")
    total = PRELUDE_LENGTH + len(raw_headers) + len(payload) + 4
    lengths = struct.pack("!II", total, len(raw_headers))
    prelude = lengths + struct.pack("!I", crc32(lengths))
    body = prelude + raw_headers + payload
    return body + struct.pack("!I", crc32(body))


def event(event_type: str, payload: bytes, content_type: str = "application/octet-stream") -> bytes:
    """An ``event`` message, e.g. ``event("PayloadPart", chunk)``."""
    headers = [(":event-type", event_type), (":content-type", content_type), (":message-type", "event")]
    return encode_message(headers, payload)


def payload_parts(chunk: bytes) -> list[bytes]:
    """``PayloadPart`` events for ``chunk``, split so that no message exceeds botocore's payload cap."""
    if not chunk:
        return []
    step = MAX_PAYLOAD_LENGTH
    return [event("PayloadPart", chunk[i:i + step]) for i in range(0, len(chunk), step)]


def exception(exception_type: str, fields: dict[str, str]) -> bytes:
    """An ``exception`` message (``ModelStreamError``, ``InternalStreamFailure``) with a JSON payload."""
    headers = [(":exception-type", exception_type), (":content-type", "application/json"),
               (":message-type", "exception")]
    return encode_message(headers, json.dumps(fields).encode())
