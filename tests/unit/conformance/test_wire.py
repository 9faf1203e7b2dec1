"""The raw-socket client against a real listening socket that answers with each framing a server may use."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from sagemaker_inference.conformance import wire


@pytest.fixture
def answering() -> Iterator[tuple[int, list[bytes]]]:
    """A socket server that, per connection, reads once and sends the next queued answer, then closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    answers: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                if answers:
                    conn.sendall(answers.pop(0))

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], answers
    listener.close()


def test_content_length_chunked_close_delimited_and_interim(answering):
    port, answers = answering
    answers += [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
    ]
    first = wire.exchange("127.0.0.1", port, wire.request("GET", "/ping"))
    assert (first.status, first.body, first.headers["x-a"], first.klass) == (200, b"ok", "1, 2", "2xx")
    assert wire.exchange("127.0.0.1", port, wire.request("GET", "/")).body == b"abc"
    assert wire.exchange("127.0.0.1", port, wire.request("GET", "/")).body == b"until close"
    assert wire.exchange("127.0.0.1", port, wire.request("POST", "/", b"x")).status == 413


def test_no_response_classes(answering):
    port, answers = answering
    answers.append(b"HTTP/1.1 200 OK\r\nContent-Len")  # a partial head, then close
    klass, response, why = wire.outcome("127.0.0.1", port, wire.request("GET", "/"))
    assert (klass, response, why) == ("close", None, "closed")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog) and never answers
        klass, _, why = wire.outcome("127.0.0.1", silent.getsockname()[1], wire.request("GET", "/"), timeout=0.3)
        assert (klass, why) == ("timeout", "timeout")


def test_request_builder():
    assert wire.request("POST", "/invocations", b"[1]", {"Content-Type": "application/json"}) == (
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 3\r\n\r\n[1]")
    assert b"Content-Length" not in wire.request("POST", "/", length=False)
