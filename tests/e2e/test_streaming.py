"""Response streaming on POST /invocations against the real server: chunked framing on the wire,
first chunk before the end, the client leaving, errors before and after the first chunk, the
timeout per gap, a slow reader, batches mixing streamed and whole bodies, /ping meanwhile.

Waits are bounded polls; where a test needs "the first chunk arrived before the generator
finished" the generator waits for a file the test creates after reading it (no timing)."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
import requests

from tests.e2e.rawhttp import RawConnection
from tests.e2e.test_server_faults import wait_for

STREAM_MODEL = """
import json, os, pathlib, time
from sagemaker_inference.streaming import SSE_CONTENT_TYPE, sse

def model_fn(model_dir):
    return pathlib.Path(model_dir)

def _mark(model, name, text=""):
    (model / name).write_text(text)

def transform_fn(model, data, content_type, accept):
    req = json.loads(data)
    mode = req["mode"]
    if mode == "plain":
        return json.dumps(req), "application/json"
    if mode == "count":
        return (f"{i}\\n" for i in range(req["n"])), "text/plain"
    if mode == "sse":
        return sse(({"token": t} for t in req["tokens"]), done="[DONE]"), SSE_CONTENT_TYPE
    return globals()["_" + mode](model, req), "application/octet-stream"

def _wait_file(model, req):
    yield b"first"
    while not (model / req["file"]).exists():
        time.sleep(0.01)
    yield b"second"

def _forever(model, req):
    try:
        while True:
            yield b"tick"
            time.sleep(0.02)
    finally:
        _mark(model, "closed-" + req["id"])

def _fail_before(model, req):
    raise ValueError("no tokens for you")
    yield b""

def _fail_after(model, req):
    yield b"one"
    yield b"two"
    raise RuntimeError("the model fell over")

def _steady(model, req):
    for i in range(req["n"]):
        time.sleep(req["gap"])
        yield b"%d;" % i

def _gap(model, req):
    yield b"first"
    time.sleep(req["sleep"])
    yield b"late"

def _big(model, req):
    chunk = b"x" * 65536
    for i in range(100000):
        _mark(model, "produced", str(i))
        yield chunk

def _empty(model, req):
    return
    yield b""

def _mixed(model, req):
    yield b""
    yield "caf\\u00e9"
    yield bytearray(b"!")
"""


def post_json(body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(data), data))


class ChunkedReader:
    """Reads one chunked response off a raw socket, chunk by chunk, as the wire has it."""

    def __init__(self, conn: RawConnection):
        self.conn = conn

    def head(self) -> tuple[int, dict[str, list[str]]]:
        while b"\r\n\r\n" not in self.conn._buffer:
            if not self.conn._fill():
                raise ConnectionError("closed before the head")
        head, self.conn._buffer = self.conn._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return int(lines[0].split(" ")[1]), headers

    def chunk(self) -> bytes | None:
        """The next chunk's data; b"" for the last chunk; None if the connection closed first."""
        while b"\r\n" not in self.conn._buffer:
            if not self.conn._fill():
                return None
        size_line, rest = self.conn._buffer.split(b"\r\n", 1)
        size = int(size_line, 16)
        while len(rest) < size + 2:
            chunk = self.conn.sock.recv(65536)
            if not chunk:
                return None
            rest += chunk
        assert rest[size:size + 2] == b"\r\n"
        self.conn._buffer = rest[size + 2:]
        return rest[:size]


@pytest.fixture(autouse=True)
def _close_raw_connections(monkeypatch):
    """Every RawConnection a test opens is closed at its end (unclosed sockets warn, and warnings fail)."""
    opened: list[RawConnection] = []
    original = RawConnection.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(RawConnection, "__init__", init)
    yield
    for conn in opened:
        conn.sock.close()


@pytest.fixture
def stream_server(serve, model_dir):
    directory = model_dir(STREAM_MODEL)
    server = serve("--model-dir", str(directory), workers=2, env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "3"})
    server.model_dir = directory
    return server


def test_chunked_on_the_wire_then_keep_alive(stream_server):
    conn = RawConnection(stream_server.port)
    conn.send(post_json({"mode": "count", "n": 5}))
    reader = ChunkedReader(conn)
    status, headers = reader.head()
    assert status == 200
    assert headers["transfer-encoding"] == ["chunked"] and "content-length" not in headers
    assert headers["content-type"] == ["text/plain"]
    assert len(headers["x-request-id"]) == 1
    chunks = []
    while (chunk := reader.chunk()):
        chunks.append(chunk)
    assert chunk == b"" and chunks == [b"%d\n" % i for i in range(5)]  # one chunk per yield, then the end
    conn.send(post_json({"mode": "plain"}))
    assert conn.read_response().json() == {"mode": "plain"}


def test_requests_stream_true_gets_the_first_chunk_before_the_generator_ends(stream_server):
    release = "release-1"
    with requests.post(stream_server.url + "/invocations", json={"mode": "wait_file", "file": release},
                       stream=True, timeout=30) as response:
        assert response.status_code == 200 and "content-length" not in response.headers
        pieces = response.iter_content(chunk_size=None)
        assert next(pieces) == b"first"  # the generator is now waiting for us
        (stream_server.model_dir / release).write_text("")
        assert b"".join(pieces) == b"second"


def test_sse_helper_frames_events(stream_server):
    with httpx.stream("POST", stream_server.url + "/invocations", json={"mode": "sse", "tokens": ["a", "b\nc"]},
                      timeout=30) as response:
        assert response.headers["content-type"] == "text/event-stream"
        text = response.read().decode()
    assert text == 'data: {"token":"a"}\n\ndata: {"token":"b\\nc"}\n\ndata: [DONE]\n\n'


def test_str_bytearray_chunks_and_empty_yields(stream_server):
    response = httpx.post(stream_server.url + "/invocations", json={"mode": "mixed"}, timeout=30)
    assert response.status_code == 200 and response.content == "café!".encode()
    response = httpx.post(stream_server.url + "/invocations", json={"mode": "empty"}, timeout=30)
    assert response.status_code == 200 and response.content == b""


def test_client_leaving_closes_the_generator(stream_server):
    conn = RawConnection(stream_server.port)
    conn.send(post_json({"mode": "forever", "id": "a"}))
    reader = ChunkedReader(conn)
    assert reader.head()[0] == 200
    assert reader.chunk() == b"tick"
    conn.sock.close()
    wait_for(lambda: (stream_server.model_dir / "closed-a").exists(), timeout=10, what="GeneratorExit in the handler")
    assert stream_server.client.post("/invocations", json={"mode": "plain"}).status_code == 200


def test_error_before_the_first_chunk_is_an_ordinary_error(stream_server):
    response = httpx.post(stream_server.url + "/invocations", json={"mode": "fail_before"}, timeout=30)
    assert response.status_code == 500
    assert "no tokens for you" in response.json()["message"]
    assert "content-length" in response.headers


def test_error_after_the_first_chunk_truncates_the_body_and_closes(stream_server):
    conn = RawConnection(stream_server.port)
    conn.send(post_json({"mode": "fail_after"}))
    reader = ChunkedReader(conn)
    assert reader.head()[0] == 200
    assert [reader.chunk(), reader.chunk()] == [b"one", b"two"]
    assert reader.chunk() is None  # closed, never the zero-length last chunk
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(stream_server.url + "/invocations", json={"mode": "fail_after"}, timeout=30)
    wait_for(lambda: "the model fell over" in stream_server.log, what="the error in the log")
    assert stream_server.client.get("/ping").status_code == 200


def test_timeout_bounds_each_gap_not_the_whole_stream(stream_server):
    # 3 s timeout: 8 gaps of 0.5 s take 4 s in all and are fine.
    response = httpx.post(stream_server.url + "/invocations", json={"mode": "steady", "n": 8, "gap": 0.5},
                          timeout=60)
    assert response.status_code == 200 and response.content == b"".join(b"%d;" % i for i in range(8))
    # A gap longer than the timeout after the first chunk: truncated.
    conn = RawConnection(stream_server.port, timeout=30)
    conn.send(post_json({"mode": "gap", "sleep": 3600}))
    reader = ChunkedReader(conn)
    assert reader.head()[0] == 200 and reader.chunk() == b"first"
    assert reader.chunk() is None
    # Nothing before the timeout: 504, as a plain request that times out.
    response = httpx.post(stream_server.url + "/invocations", json={"mode": "steady", "n": 1, "gap": 3600},
                          timeout=60)
    assert response.status_code == 504


def test_slow_reader_stops_the_generator(stream_server):
    produced = stream_server.model_dir / "produced"

    def count() -> int:
        try:
            return int(produced.read_text())
        except (OSError, ValueError):  # not there yet, or caught between truncate and write
            return -1

    def settled() -> int | None:
        first = count()
        time.sleep(1.0)
        second = count()
        return second if first == second and second > 0 else None

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", stream_server.port))
        sock.sendall(post_json({"mode": "big"}))
        stalled = wait_for(settled, timeout=30, what="the generator to stop while nobody reads")
        # The window (16 chunks) plus socket buffers, nowhere near the 100,000 chunks it would make.
        assert stalled * 65536 < 24 * 1024 * 1024, stalled
        got = 0
        while got < (stalled + 40) * 65536:  # reading lets it go on
            data = sock.recv(1 << 20)
            assert data
            got += len(data)
        wait_for(lambda: count() > stalled, what="the generator to resume")


def test_ping_and_plain_requests_while_streams_run(stream_server):
    conns = []
    for i in range(6):
        conn = RawConnection(stream_server.port)
        conn.send(post_json({"mode": "forever", "id": f"p{i}"}))
        reader = ChunkedReader(conn)
        assert reader.head()[0] == 200 and reader.chunk() == b"tick"
        conns.append(conn)
    for _ in range(20):
        assert stream_server.client.get("/ping").status_code == 200
        assert stream_server.client.post("/invocations", json={"mode": "plain"}).status_code == 200
    for conn in conns:
        conn.sock.close()
    for i in range(6):
        wait_for(lambda i=i: (stream_server.model_dir / f"closed-p{i}").exists(), timeout=10, what="closed")


HANDLER_SERVICE = """
import time

def handle(data, context):
    if data is None:
        return None
    out = []
    for i, item in enumerate(data):
        body = bytes(item["body"])
        if body.startswith(b"stream"):
            out.append(iter([b"s", b"%d" % len(data)]))
        else:
            out.append(b"whole %d" % len(data))
    return out
"""


def test_batch_mixes_streamed_and_whole_bodies(serve, model_dir, tmp_path):
    directory = model_dir("")
    (directory / "service.py").write_text(HANDLER_SERVICE)
    server = serve("--model-dir", str(directory), "--handler", str(directory / "service.py") + ":handle",
                   "--batch-size", "2", "--max-batch-delay", "2000")
    results: dict[str, httpx.Response] = {}

    def send(body: bytes) -> None:
        results[body.decode()] = httpx.post(server.url + "/invocations", content=body, timeout=30)

    threads = [threading.Thread(target=send, args=(b,)) for b in (b"stream", b"plain")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["stream"].status_code == 200 and results["stream"].content == b"s2"
    assert "content-length" not in results["stream"].headers
    assert results["plain"].content == b"whole 2" and results["plain"].headers["content-length"] == "7"


def test_worker_death_ends_its_streams(stream_server):
    conn = RawConnection(stream_server.port)
    conn.send(post_json({"mode": "forever", "id": "d"}))
    reader = ChunkedReader(conn)
    assert reader.head()[0] == 200 and reader.chunk() == b"tick"
    import os
    import signal

    for pid in stream_server.worker_pids():
        os.kill(pid, signal.SIGKILL)
    while (chunk := reader.chunk()) == b"tick":
        pass
    assert chunk is None  # truncated, not a clean end
    wait_for(lambda: stream_server.client.get("/ping").status_code == 200, timeout=30, what="workers replaced")


def test_streams_do_not_hold_the_worker(serve, model_dir):
    directory = model_dir(STREAM_MODEL)
    server = serve("--model-dir", str(directory), workers=1)
    conns = []
    for i in range(20):  # far more streams than the one worker
        conn = RawConnection(server.port)
        conn.send(post_json({"mode": "forever", "id": f"h{i}"}))
        conns.append(conn)
    for conn in conns:
        reader = ChunkedReader(conn)
        assert reader.head()[0] == 200 and reader.chunk() == b"tick"
    assert server.client.post("/invocations", json={"mode": "plain"}).status_code == 200
    for conn in conns:
        conn.sock.close()

