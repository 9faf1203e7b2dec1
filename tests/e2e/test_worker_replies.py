"""Issue 16, items 9 and 10, on the wire: a worker sends each finished reply before it starts the
next batch (so a completed request is never reported failed and a crashing one never runs
twice), and the server owns the framing of the responses a handler shapes.

One worker, a ``handle(data, context)`` handler service, pipelined requests on a raw socket: the
frontend sends them to the worker in one write, so they arrive in one read."""

from __future__ import annotations

import pytest

from tests.e2e.rawhttp import RawConnection
from tests.e2e.test_server_faults import wait_for

SERVICE = """
import os, pathlib, time

HERE = pathlib.Path(__file__).parent

def handle(data, context):
    if data is None:
        return None
    out = []
    for i, item in enumerate(data):
        body = bytes(item["body"]).decode()
        with open(HERE / "runs", "a") as f:
            f.write(body + "\\n")
        if body == "crash":
            os._exit(3)
        if body == "block":
            while not (HERE / "release").exists():
                time.sleep(0.01)
        if body == "hang":
            time.sleep(3600)
        if body.startswith("status "):
            context.set_response_status(int(body.split()[1]), "Odd", idx=i)
        if body == "headers":
            for name, value in [("Content-Length", "999"), ("Transfer-Encoding", "chunked"), ("Connection", "close"),
                                ("x-request-id", "forged"), ("Bad Name", "x"), ("X-Fine", "yes")]:
                context.set_response_header(i, name, value)
        if body == "nocontent":
            context.set_response_status(204, idx=i)
        out.append(b"done " + body.encode() + b" pid " + str(os.getpid()).encode())
    return out
"""


def post(body: bytes) -> bytes:
    return b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def server(serve, model_dir):
    directory = model_dir("")
    (directory / "service.py").write_text(SERVICE)
    server = serve("--model-dir", str(directory), "--handler", str(directory / "service.py") + ":handle",
                   env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "2"})
    server.model_dir = directory
    for _ in range(20):  # warm: a cold first call takes longer than the 0.2 ms the old loop held replies for
        assert server.client.post("/invocations", content=b"warm").status_code == 200
    return server


def runs(server) -> list[str]:
    path = server.model_dir / "runs"
    return path.read_text().split() if path.exists() else []


def test_completed_request_survives_the_crash_of_the_next_and_the_crash_runs_once(server):
    conn = RawConnection(server.port)
    try:
        conn.send(post(b"fast") + post(b"crash"))
        first, second = conn.read_response(), conn.read_response()
    finally:
        conn.sock.close()
    assert first.status == 200 and first.body.startswith(b"done fast")
    assert second.status == 500 and second.json()["message"] == "Worker died."
    wait_for(lambda: server.client.get("/ping").status_code == 200, what="the worker replaced")
    assert server.client.post("/invocations", content=b"after").status_code == 200
    assert runs(server).count("crash") == 1


def test_completed_request_survives_the_timeout_of_the_next_which_runs_once(server):
    conn = RawConnection(server.port, timeout=60)
    try:
        conn.send(post(b"fast") + post(b"hang"))
        first, second = conn.read_response(), conn.read_response()
    finally:
        conn.sock.close()
    assert first.status == 200 and second.status == 504
    wait_for(lambda: server.client.get("/ping").status_code == 200, what="the worker replaced")
    assert runs(server).count("hang") == 1


def test_a_finished_reply_is_not_held_while_the_next_batch_runs(server):
    conn = RawConnection(server.port, timeout=30)
    try:
        conn.send(post(b"fast") + post(b"block"))
        first = conn.read_response()  # "block" runs until we release it: "fast" must already be here
        assert first.status == 200 and first.body.startswith(b"done fast")
        (server.model_dir / "release").write_text("")
        assert conn.read_response().status == 200
    finally:
        conn.sock.close()


def read_raw(server, body: bytes) -> tuple[list[str], bytes]:
    conn = RawConnection(server.port)
    try:
        conn.send(post(body) + post(b"next"))
        while b"done next" not in conn._buffer:
            assert conn._fill()
        raw = conn._buffer
    finally:
        conn.sock.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), rest


def test_framing_headers_from_the_handler_are_dropped(server):
    lines, rest = read_raw(server, b"headers")
    names = [line.split(":")[0].lower() for line in lines[1:]]
    assert lines[0] == "HTTP/1.1 200 OK"
    for name in ("content-length", "connection", "x-request-id"):
        assert names.count(name) == 1, lines
    assert "transfer-encoding" not in names and "bad name" not in names
    assert "x-fine: yes" in [line.lower() for line in lines]
    assert "x-request-id: forged" not in [line.lower() for line in lines]
    assert rest.startswith(b"done headers")  # the next response follows right after the body


@pytest.mark.parametrize("status", [70000, 1000, 99, 100, 600])
def test_a_status_outside_200_599_is_a_500_and_the_worker_lives(server, status):
    pid = int(server.client.post("/invocations", content=b"hello").content.split()[-1])
    response = server.client.post("/invocations", content=f"status {status}".encode())
    assert response.status_code == 500
    assert str(status) in response.json()["message"]
    after = server.client.post("/invocations", content=b"hello")
    assert after.status_code == 200 and int(after.content.split()[-1]) == pid


def test_204_goes_out_without_a_body(server):
    lines, rest = read_raw(server, b"nocontent")
    assert lines[0].startswith("HTTP/1.1 204")
    assert not any(line.lower().startswith("content-length") for line in lines)
    assert rest.startswith(b"HTTP/1.1 200")  # no body in between

