"""The HTTP layer of the real server: routing errors, keep-alive, pipelining, malformed requests,
size limits, Expect: 100-continue, and many concurrent clients."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import ECHO_MODEL
from tests.e2e.rawhttp import RawConnection, request
from tests.e2e.serverproc import ServerProcess, write_model

# Function-form handler service: the body back, untouched (the cheapest full round trip).
ECHO_SERVICE = """
def handle(data, context):
    if data is None:
        return None
    for idx in range(len(data)):
        context.set_response_content_type(idx, "application/octet-stream")
    return [bytes(item["body"]) for item in data]
"""
LIMIT_MB = 1
LIMIT = LIMIT_MB * 1024 * 1024


def _start(tmp_path_factory, name: str, *args: str, env: dict | None = None) -> ServerProcess:
    directory = write_model(tmp_path_factory.mktemp(name) / "model", "", **{"code/echo_service.py": ECHO_SERVICE})
    return ServerProcess(["--model-dir", str(directory), "--handler", "echo_service", "--workers", "1", *args],
                         env=env)


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    with _start(tmp_path_factory, "echo") as server:
        yield server.wait_ready()


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    with _start(tmp_path_factory, "limited", env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": str(LIMIT_MB)}) as server:
        yield server.wait_ready()


# -- routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/nope", "/invocations/extra", "/models", "/models/model"])
def test_unknown_route_is_404_json(echo, path):
    response = echo.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": 404, "type": "ResourceNotFoundException",
                               "message": "Requested resource is not found, please refer to API document."}


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/invocations", "POST"),
    ("PUT", "/invocations", "POST"),
    ("DELETE", "/ping", "GET, POST"),
    ("POST", "/execution-parameters", "GET"),
])
def test_wrong_method_is_405_json_with_allow(echo, method, path, allow):
    response = echo.client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == 405
    assert response.json()["type"] == "MethodNotAllowedException"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_ping_body(echo, method):
    response = echo.client.request(method, "/ping")
    assert response.status_code == 200
    assert response.content == b'{\n  "status": "Healthy"\n}\n'
    assert response.headers["content-type"] == "application/json"


def test_trailing_slash_and_query(echo):
    assert echo.client.get("/ping/").status_code == 200
    response = echo.client.post("/invocations/?x=1", content=b"abc")
    assert (response.status_code, response.content) == (200, b"abc")


def test_common_response_headers(echo):
    response = echo.client.post("/invocations", content=b"x")
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["Cache-Control"] == "no-cache; no-store, must-revalidate, private"
    assert response.headers["content-length"] == "1"
    uuid.UUID(response.headers["x-request-id"])
    assert response.headers["x-request-id"] != echo.client.post("/invocations", content=b"x").headers["x-request-id"]


def test_execution_parameters(echo):
    response = echo.client.get("/execution-parameters")
    assert response.status_code == 200
    assert response.json() == {"MaxConcurrentTransforms": 1, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 6}


def test_execution_parameters_follow_the_limits(limited):
    assert limited.client.get("/execution-parameters").json()["MaxPayloadInMB"] == LIMIT_MB


# -- connections -----------------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(echo):
    with RawConnection(echo.port) as conn:
        for i in range(5):
            conn.send(request("POST", "/invocations", f"req-{i}".encode()))
            response = conn.read_response()
            assert (response.status, response.body) == (200, f"req-{i}".encode())
            assert response.headers["connection"] == "keep-alive"
        conn.send(request("GET", "/ping"))
        assert conn.read_response().status == 200


def test_keep_alive_after_a_client_error(echo):
    # improvements.md §2: keep-alive is kept when the request was read completely.
    with RawConnection(echo.port) as conn:
        conn.send(request("GET", "/nope"))
        assert conn.read_response().status == 404
        conn.send(request("POST", "/invocations", b"still here"))
        assert conn.read_response().body == b"still here"


def test_pipelined_requests_are_answered_in_order(echo):
    bodies = [f"pipelined-{i}-".encode() * (i + 1) for i in range(8)]
    wire = b"".join(request("POST", "/invocations", body) for body in bodies)
    wire += request("GET", "/ping") + request("GET", "/nope") + request("POST", "/invocations", b"last")
    with RawConnection(echo.port) as conn:
        conn.send(wire)
        responses = [conn.read_response() for _ in range(len(bodies) + 3)]
    assert [r.body for r in responses[:8]] == bodies
    assert [r.status for r in responses[8:]] == [200, 404, 200]
    assert responses[-1].body == b"last"


def test_connection_close_is_honoured(echo):
    with RawConnection(echo.port) as conn:
        conn.send(request("POST", "/invocations", b"bye", {"Connection": "close"}))
        response = conn.read_response()
        assert (response.status, response.headers["connection"]) == (200, "close")
        assert conn.is_closed_by_peer()


def test_http_1_0(echo):
    with RawConnection(echo.port) as conn:
        conn.send(request("POST", "/invocations", b"old", version="HTTP/1.0"))
        assert conn.read_response().body == b"old"
        assert conn.is_closed_by_peer()
    with RawConnection(echo.port) as conn:
        for body in (b"one", b"two"):
            conn.send(request("POST", "/invocations", body, {"Connection": "keep-alive"}, version="HTTP/1.0"))
            assert conn.read_response().body == body


def test_chunked_request_body(echo):
    with RawConnection(echo.port) as conn:
        conn.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
        assert conn.read_response().body == b"hello world"


def test_h2c_upgrade_request_is_served_as_http_1_1(echo):
    # `curl --http2 http://...` sends this; the body must reach the handler and the connection stay usable.
    with RawConnection(echo.port) as conn:
        upgrade = {"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAAQ"}
        conn.send(request("POST", "/invocations", b"[1, 2]", upgrade) + request("GET", "/ping"))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"[1, 2]")
        assert conn.read_response().status == 200


@pytest.mark.parametrize("wire", [
    b"THIS IS NOT HTTP\r\n\r\n",
    b"GET /ping HTTP/1.1\r\nBad Header Line\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    b"GET /ping HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n",
], ids=["garbage", "no-colon", "bad-length", "nul"])
def test_malformed_http_is_400_and_closed(echo, wire):
    with RawConnection(echo.port) as conn:
        conn.send(wire)
        response = conn.read_response()
        assert response.status == 400
        assert response.headers["connection"] == "close"
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == 400
        assert conn.is_closed_by_peer()
    assert echo.client.get("/ping").status_code == 200


def test_expect_100_continue(echo):
    with RawConnection(echo.port) as conn:
        conn.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        interim = conn.read_response()
        assert interim.status == 100
        conn.send(b"body")
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"body")


# -- size limits -----------------------------------------------------------------------------------


def test_body_of_exactly_the_limit_passes(limited):
    response = limited.client.post("/invocations", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert len(response.content) == LIMIT


def test_body_over_the_limit_is_413_json(limited):
    with RawConnection(limited.port) as conn:
        conn.send(request("POST", "/invocations", b"x" * (LIMIT + 1)))
        response = conn.read_response()
        assert response.status == 413
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == 413
        assert conn.is_closed_by_peer()


def test_declared_size_over_the_limit_is_413_before_the_body_is_sent(limited):
    with RawConnection(limited.port) as conn:
        conn.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (50 * LIMIT))
        response = conn.read_response()  # we never send the body: the answer cannot wait for it
        assert response.status == 413
        assert response.json()["code"] == 413
        assert conn.is_closed_by_peer()


def test_expect_100_continue_over_the_limit_is_413(limited):
    with RawConnection(limited.port) as conn:
        conn.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % (2 * LIMIT))
        assert conn.read_response().status == 413


def test_chunked_upload_over_the_limit_is_413_while_streaming(limited):
    chunk = b"x" * 65536
    with RawConnection(limited.port) as conn:
        conn.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        # One chunk more than the limit, and no terminating chunk: the 413 must not wait for the end.
        conn.send(b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(LIMIT // len(chunk) + 1)))
        response = conn.read_response()
        assert response.status == 413
        assert response.json()["code"] == 413
        assert conn.is_closed_by_peer()
    assert limited.client.get("/ping").status_code == 200


def test_chunked_upload_within_the_limit_passes(limited):
    def chunks():
        for _ in range(8):
            yield b"y" * 65536

    response = limited.client.post("/invocations", content=chunks())  # httpx sends a generator chunked
    assert response.status_code == 200
    assert response.content == b"y" * 8 * 65536


# -- concurrency -----------------------------------------------------------------------------------


def test_400_concurrent_requests_without_cross_talk(serve, model_dir):
    server = serve("--model-dir", str(model_dir(ECHO_MODEL)), workers=2)
    ids = [str(uuid.uuid4()) for _ in range(400)]
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(base_url=server.url, timeout=30.0, limits=limits) as client:

        def call(request_id: str) -> tuple[str, int, object]:
            payload = {"id": request_id, "padding": request_id * (hash(request_id) % 50)}
            response = client.post("/invocations", content=json.dumps(payload),
                                   headers={"Content-Type": "application/json", "X-Request-Tag": request_id})
            return request_id, response.status_code, response.json()

        with ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(call, ids))
    assert [status for _, status, _ in results] == [200] * 400
    for request_id, _, body in results:
        assert body["id"] == request_id
        assert body["padding"] == request_id * (hash(request_id) % 50)


def test_head_ping_has_no_body(echo):
    # The HEAD response carries GET's headers (content-length included) but no body; on a
    # keep-alive connection the next bytes must be the next response.
    with RawConnection(echo.port) as conn:
        conn.send(request("HEAD", "/ping") + request("GET", "/ping"))
        conn.sock.settimeout(5)
        data = b""
        while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"}\n"):
            chunk = conn.sock.recv(65536)
            assert chunk, data
            data += chunk
    _, head, get = data.split(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 26\r\n" in head
    assert head.endswith(b"\r\n\r\n")
    assert get.endswith(b'\r\n\r\n{\n  "status": "Healthy"\n}\n')


def test_many_pipelined_requests_without_reading(echo):
    # More than the server keeps outstanding per connection: it must pause reading, not drop or stall.
    count = 300
    with RawConnection(echo.port) as conn:
        conn.send(b"".join(request("POST", "/invocations", f"r{i}".encode()) for i in range(count)))
        bodies = [conn.read_response().body for _ in range(count)]
    assert bodies == [f"r{i}".encode() for i in range(count)]


def test_pipelined_request_over_the_limit_ends_the_connection_after_the_earlier_answers(limited):
    wire = (request("POST", "/invocations", b"first") + request("GET", "/ping")
            + b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1)
            + request("POST", "/invocations", b"never"))
    with RawConnection(limited.port) as conn:
        conn.send(wire)
        assert conn.read_response().body == b"first"
        assert conn.read_response().status == 200
        assert conn.read_response().status == 413
        assert conn.is_closed_by_peer()


def test_idle_and_partial_clients_do_not_starve_others(echo):
    idle = [RawConnection(echo.port) for _ in range(20)]
    partial = [RawConnection(echo.port) for _ in range(20)]
    try:
        for conn in partial:
            conn.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part of the body")
        for i in range(10):
            response = echo.client.post("/invocations", content=f"served-{i}".encode())
            assert response.content == f"served-{i}".encode()
        assert echo.client.get("/ping").status_code == 200
    finally:
        for conn in idle + partial:
            conn.close()


def test_client_leaving_mid_request_does_not_disturb_the_next(echo):
    with RawConnection(echo.port) as conn:
        conn.send(request("POST", "/invocations", b"x" * 100_000))
    with RawConnection(echo.port) as conn:
        conn.send(request("POST", "/invocations", b"next"))
        assert conn.read_response().body == b"next"


def test_model_selection_in_single_model_mode(echo):
    assert echo.client.post("/models/model/invoke", content=b"by-name").content == b"by-name"
    assert echo.client.post("/invocations?model_name=model", content=b"by-query").content == b"by-query"
    for response in (echo.client.post("/models/other/invoke", content=b"x"),
                     echo.client.post("/invocations?model_name=other", content=b"x")):
        assert response.status_code == 404
        assert response.json() == {"code": 404, "type": "ModelNotFoundException", "message": "Model not found: other"}
