"""Bidirectional streaming (a WebSocket on /invocations-bidirectional-stream) against the real
server with a real client (``websockets``): messages both ways, fragments, close codes, limits,
refusals, many sessions on few workers, keep-alive pings, a worker dying under a session."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from tests.e2e.test_server_faults import wait_for

BIDI_MODEL = """
import json, os, pathlib, time

def model_fn(model_dir):
    return pathlib.Path(model_dir)

def transform_fn(model, data, content_type, accept):
    return data

def bidirectional_stream_fn(messages, model, context):
    name = context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes")
    yield json.dumps({"pid": os.getpid(), "attributes": name, "query": context.query_params,
                      "request_id": context.get_request_id(0)})
    try:
        for message in messages:
            if message == "boom":
                raise ValueError("boom requested")
            if message == "bye":
                return
            if message == "slow":
                time.sleep(0.5)
            yield message
    finally:
        (model / ("ended-" + str(context.query_params.get("id", "")))).write_text("")
"""

PLAIN_MODEL = """
def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    return data
"""


def ws_url(server, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/invocations-bidirectional-stream" + (f"?{query}" if query else "")


@pytest.fixture
def bidi_server(serve, model_dir):
    directory = model_dir(BIDI_MODEL)
    server = serve("--model-dir", str(directory), workers=2, env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"})
    server.model_dir = directory
    return server


def test_text_binary_and_fragmented_messages_round_trip(bidi_server):
    with connect(ws_url(bidi_server, "id=a&x=1"), open_timeout=10,
                 additional_headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=1"}) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["attributes"] == "trace=1" and hello["query"] == {"id": "a", "x": "1"} and hello["request_id"]
        ws.send("héllo")
        assert ws.recv(timeout=10) == "héllo"
        ws.send(bytes(range(256)))
        assert ws.recv(timeout=10) == bytes(range(256))
        ws.send(["frag", "men", "ted"])  # three frames, one message
        assert ws.recv(timeout=10) == "fragmented"
        ws.send([b"\x00", b"\x01"])
        assert ws.recv(timeout=10) == b"\x00\x01"
        ws.send("")
        assert ws.recv(timeout=10) == ""


def test_returning_closes_1000_and_an_exception_1011(bidi_server):
    with connect(ws_url(bidi_server), open_timeout=10) as ws:
        ws.recv(timeout=10)
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1000
    with connect(ws_url(bidi_server), open_timeout=10) as ws:
        ws.recv(timeout=10)
        ws.send("boom")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1011 and "boom requested" in closed.value.rcvd.reason
    wait_for(lambda: "boom requested" in bidi_server.log, what="the error logged")


def test_message_over_the_payload_limit_closes_1009(bidi_server):
    with connect(ws_url(bidi_server), open_timeout=10, max_size=None) as ws:
        ws.recv(timeout=10)
        ws.send(b"x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1009


def test_invalid_utf8_in_a_text_frame_closes_1007(bidi_server):
    with connect(ws_url(bidi_server), open_timeout=10) as ws:
        ws.recv(timeout=10)
        ws.socket.sendall(Frame(Opcode.TEXT, b"\xff\xfe ok").serialize(mask=True, extensions=[]))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1007


def test_client_closing_ends_the_messages_iterator(bidi_server):
    with connect(ws_url(bidi_server, "id=c"), open_timeout=10) as ws:
        ws.recv(timeout=10)
        ws.send("x")
        ws.recv(timeout=10)
    wait_for(lambda: (bidi_server.model_dir / "ended-c").exists(), what="the handler to see the end")


def test_many_sessions_on_two_workers_all_make_progress(bidi_server):
    with contextlib.ExitStack() as stack:
        sessions = [stack.enter_context(connect(ws_url(bidi_server, f"id=m{i}"), open_timeout=10)) for i in range(14)]
        pids = {json.loads(ws.recv(timeout=10))["pid"] for ws in sessions}
        assert len(pids) == 2  # spread over both workers
        for round_ in range(3):  # every session answers in every round: none waits for another to end
            for i, ws in enumerate(sessions):
                ws.send(f"{i}:{round_}")
            for i, ws in enumerate(sessions):
                assert ws.recv(timeout=20) == f"{i}:{round_}"
        # meanwhile the plain endpoints are served
        assert bidi_server.client.get("/ping").status_code == 200
        assert bidi_server.client.post("/invocations", content=b"plain").content == b"plain"


def test_sessions_past_the_cap_get_503(serve, model_dir):
    server = serve("--model-dir", str(model_dir(BIDI_MODEL)), workers=1,
                   env={"SAGEMAKER_MAX_BIDIRECTIONAL_SESSIONS_PER_WORKER": "2"})
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(connect(ws_url(server), open_timeout=10)).recv(timeout=10)
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(server), open_timeout=10)
        assert refused.value.response.status_code == 503
        assert b"SAGEMAKER_MAX_BIDIRECTIONAL_SESSIONS_PER_WORKER" in refused.value.response.body
    wait_for(lambda: _opens(server), what="a slot to free up once a session ended")


def _opens(server) -> bool:
    try:
        with connect(ws_url(server), open_timeout=10) as ws:
            ws.recv(timeout=10)
        return True
    except InvalidStatus:
        return False


def test_model_without_a_session_function_refuses_the_upgrade(serve, model_dir):
    server = serve("--model-dir", str(model_dir(PLAIN_MODEL)))
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(server), open_timeout=10)
    response = refused.value.response
    assert response.status_code == 501
    body = json.loads(response.body)
    assert body["code"] == 501 and "bidirectional_stream_fn" in body["message"]


def test_bad_handshakes(bidi_server):
    response = httpx.get(bidi_server.url + "/invocations-bidirectional-stream")
    assert response.status_code == 426 and response.headers["upgrade"] == "websocket"
    with socket.create_connection(("127.0.0.1", bidi_server.port), timeout=10) as sock:
        sock.sendall(b"GET /invocations-bidirectional-stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")  # no Sec-WebSocket-Key
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400") and b"Sec-WebSocket-Key" in answer
    assert httpx.post(bidi_server.url + "/invocations-bidirectional-stream").status_code == 405


def test_pings_are_answered(bidi_server):
    with connect(ws_url(bidi_server), open_timeout=10) as ws:
        ws.recv(timeout=10)
        assert ws.ping().wait(10)


def test_idle_peers_are_pinged_and_dead_ones_closed(serve, model_dir):
    server = serve("--model-dir", str(model_dir(BIDI_MODEL)), env={"SAGEMAKER_WEBSOCKET_PING_INTERVAL": "0.2"})
    with connect(ws_url(server), open_timeout=10) as alive:  # answers pings by itself
        alive.recv(timeout=10)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as dead:
            dead.sendall(b"GET /invocations-bidirectional-stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                         b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n")
            received = b""
            while True:  # a ping, then the close, then EOF: never answered, so closed
                data = dead.recv(65536)
                if not data:
                    break
                received += data
        assert received.startswith(b"HTTP/1.1 101")
        assert b"\x89" in received and b"\x88" in received  # a ping frame and a close frame
        alive.send("still here")  # several ping intervals later
        assert alive.recv(timeout=10) == "still here"


def test_worker_death_closes_its_sessions_1011(bidi_server):
    with connect(ws_url(bidi_server), open_timeout=10) as ws:
        pid = json.loads(ws.recv(timeout=10))["pid"]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1011
    wait_for(lambda: bidi_server.client.get("/ping").status_code == 200, timeout=30, what="the worker replaced")


def test_slow_handler_back_pressure_keeps_order(bidi_server):
    """More messages than the window, faster than the handler takes them: all arrive, in order."""
    with connect(ws_url(bidi_server), open_timeout=10) as ws:
        ws.recv(timeout=10)
        ws.send("slow")
        sender = threading.Thread(target=lambda: [ws.send(f"m{i}") for i in range(100)])
        sender.start()
        got = [ws.recv(timeout=20) for _ in range(101)]
        sender.join(20)
    assert got == ["slow"] + [f"m{i}" for i in range(100)]
