"""The WebSocket handshake check before an upgrade is accepted (wsproto reads our parsed request)."""

from __future__ import annotations

import pytest

from sagemaker_inference.server.http.parser import RequestAssembler
from sagemaker_inference.server.http.websocket import HandshakeError, handshake

GOOD = (b"GET /invocations-bidirectional-stream?x=1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def parsed(raw: bytes):
    [request] = RequestAssembler(1000).feed(raw)
    assert request.upgrade
    return request


def test_a_valid_handshake_is_accepted():
    connection = handshake(parsed(GOOD))
    from wsproto.events import AcceptConnection

    answer = connection.send(AcceptConnection())
    assert answer.startswith(b"HTTP/1.1 101") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer  # RFC 6455's example


@pytest.mark.parametrize("drop, replace", [
    (b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
    (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"),
])
def test_invalid_handshakes_are_refused(drop, replace):
    with pytest.raises(HandshakeError):
        handshake(parsed(GOOD.replace(drop, replace)))
