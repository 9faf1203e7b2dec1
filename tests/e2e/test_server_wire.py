"""Faults on the wire against the real server (issue 16): what a broken or hostile client sends,
answered with a clear status while everyone else keeps being served. Raw sockets throughout:
these are the cases HTTP client libraries will not produce."""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time

import pytest

from tests.e2e.rawhttp import RawConnection, request
from tests.e2e.serverproc import ServerProcess, write_model

# Function-form handler service that shows what it was given: query parameters, headers, body.
INSPECT_SERVICE = """
import json
import time

def handle(data, context):
    if data is None:
        return None
    out = []
    for idx, item in enumerate(data):
        if "sleep" in item:
            time.sleep(float(item["sleep"]))
        context.set_response_content_type(idx, "application/json")
        out.append(json.dumps({
            "params": {k: (v.decode() if isinstance(v, (bytes, bytearray)) else v)
                       for k, v in item.items() if k != "body"},
            "headers": context.request_processor[idx].get_request_properties(),
            "body": bytes(item["body"]).decode("latin-1"),
        }))
    return out
"""


def _start(tmp_path_factory, name: str, *args: str, env: dict | None = None) -> ServerProcess:
    directory = write_model(tmp_path_factory.mktemp(name) / "model", "",
                            **{"code/inspect_service.py": INSPECT_SERVICE})
    return ServerProcess(["--model-dir", str(directory), "--handler", "inspect_service", "--workers", "1", *args],
                         env=env)


@pytest.fixture(scope="module")
def inspect(tmp_path_factory):
    with _start(tmp_path_factory, "inspect") as server:
        yield server.wait_ready()


def _seen(response) -> dict:
    assert response.status == 200, response.body
    return json.loads(response.body)


# -- trailers and NUL: nothing a client sends after the head, or hides in an escape, rewrites the request ------


def test_trailer_fields_do_not_override_headers(inspect):
    with RawConnection(inspect.port) as conn:
        conn.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n"
                  b"\r\n3\r\nabc\r\n0\r\nContent-Type: text/evil\r\nX-Injected: yes\r\n\r\n")
        seen = _seen(conn.read_response())
    assert seen["body"] == "abc"
    assert seen["headers"]["Content-Type"] == "text/csv"
    assert "X-Injected" not in seen["headers"]


@pytest.mark.parametrize("query", ["a=1%00injected%00yes", "a%00b=1", "x=%00"])
def test_nul_in_the_query_is_400(inspect, query):
    with RawConnection(inspect.port) as conn:
        conn.send(request("POST", f"/invocations?{query}", b"x"))
        response = conn.read_response()
        assert response.status == 400
        assert "NUL" in response.json()["message"]
        conn.send(request("POST", "/invocations?a=1&b=%01", b"x"))  # the connection is still good
        assert _seen(conn.read_response())["params"] == {"a": "1", "b": "\x01"}


def test_status_lines_carry_reason_phrases(inspect):
    with RawConnection(inspect.port) as conn:
        conn.send(request("POST", "/invocations", b"x") + request("GET", "/ping") + request("GET", "/nowhere"))
        assert [(r.status, r.reason) for r in (conn.read_response() for _ in range(3))] == [
            (200, "OK"), (200, "OK"), (404, "Not Found")]


# -- half-close: a client that shuts down its sending side still gets every answer -----------------


@pytest.mark.parametrize("count", [1, 3])
def test_half_closed_connection_gets_every_response(inspect, count):
    with RawConnection(inspect.port) as conn:
        conn.send(b"".join(request("POST", f"/invocations?i={i}", b"x") for i in range(count)))
        conn.sock.shutdown(socket.SHUT_WR)
        assert [_seen(conn.read_response())["params"]["i"] for _ in range(count)] == [str(i) for i in range(count)]
        assert conn.is_closed_by_peer()


def test_half_close_in_the_middle_of_a_request_answers_the_complete_ones(inspect):
    with RawConnection(inspect.port) as conn:
        conn.send(request("POST", "/invocations?i=0", b"x") + _head(9) + b"ab")
        conn.sock.shutdown(socket.SHUT_WR)
        assert _seen(conn.read_response())["params"]["i"] == "0"
        assert conn.is_closed_by_peer()


# -- one connection cannot take the whole job queue ---------------------------------------------------


@pytest.fixture(scope="module")
def small_queue(tmp_path_factory):
    with _start(tmp_path_factory, "queue", env={"SAGEMAKER_MODEL_JOB_QUEUE_SIZE": "100"}) as server:
        yield server.wait_ready()


def test_pipelining_more_than_the_job_queue_holds_is_served_in_full(small_queue):
    count = 1000  # ten times the queue, in one send: parsing must stop at the per-connection limit
    with RawConnection(small_queue.port, timeout=60) as conn:
        conn.send(b"".join(request("POST", f"/invocations?i={i}", b"x") for i in range(count)))
        with RawConnection(small_queue.port) as other:  # and someone else is served meanwhile
            other.send(request("POST", "/invocations?i=other", b"x"))
            assert _seen(other.read_response())["params"]["i"] == "other"
        responses = [conn.read_response() for _ in range(count)]
    assert [r.status for r in responses] == [200] * count
    assert [json.loads(r.body)["params"]["i"] for r in responses] == [str(i) for i in range(count)]


# -- Expect: 100-continue behind pipelined requests ------------------------------------------------------


def test_expect_continue_pipelined_behind_another_request_gets_100_after_its_answer(inspect):
    with RawConnection(inspect.port) as conn:
        conn.send(request("POST", "/invocations?sleep=0.3&i=0", b"x")
                  + b"POST /invocations?i=1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        assert _seen(conn.read_response())["params"]["i"] == "0"
        interim = conn.read_response()  # must come without the body having been sent
        assert (interim.status, interim.reason) == (100, "Continue")
        conn.send(b"body")
        seen = _seen(conn.read_response())
        assert (seen["params"]["i"], seen["body"]) == ("1", "body")


# -- read timeout: slow heads and bodies get 408, a big body at an ordinary rate does not ----------------

READ_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    env = {"SAGEMAKER_REQUEST_READ_TIMEOUT": str(READ_TIMEOUT), "SAGEMAKER_MAX_PAYLOAD_IN_MB": "32"}
    with _start(tmp_path_factory, "impatient", env=env) as server:
        yield server.wait_ready()


def _trickle(conn: RawConnection, data: bytes, deadline: float = 30.0) -> bytes:
    """Send one byte a second until the server answers; what it answered (read after its close)."""
    end = time.monotonic() + deadline
    conn.sock.settimeout(1.0)
    for byte in data:
        try:
            conn.send(bytes([byte]))
            if conn.sock.recv(65536, socket.MSG_PEEK):
                break
        except socket.timeout:
            pass
        except OSError:
            break
        assert time.monotonic() < end, "never timed out"
    conn.sock.settimeout(10.0)
    return conn.read_response()


@pytest.mark.parametrize("head", [b"POST /invocations HTTP/1.1\r\nContent-Length: 100\r\n\r\n", b""],
                         ids=["slow-body", "slow-head"])
def test_slow_request_gets_408_and_close(impatient, head):
    with RawConnection(impatient.port) as conn:
        conn.send(head)
        response = _trickle(conn, b"POST /invocations HTTP/1.1\r\n" if not head else b"x" * 100)
        assert response.status == 408
        assert "SAGEMAKER_REQUEST_READ_TIMEOUT" in response.json()["message"]
        assert conn.is_closed_by_peer()
    assert impatient.client.get("/ping").status_code == 200


def test_big_body_at_an_ordinary_rate_outlasts_the_read_timeout(impatient):
    size, chunk = 24 * 1024 * 1024, 256 * 1024  # about 2.5 x the timeout at ~4 MB/s
    with RawConnection(impatient.port, timeout=60) as conn:
        conn.send(b"POST /invocations HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size)
        started = time.monotonic()
        for sent in range(0, size, chunk):
            conn.send(b"y" * chunk)
            time.sleep(max(0.0, started + sent / (4 * 1024 * 1024) - time.monotonic()))
        assert time.monotonic() - started > READ_TIMEOUT  # the upload really outlasted the timeout
        response = conn.read_response()
    assert response.status == 200
    assert len(json.loads(response.body)["body"]) == size


def test_pipelining_client_is_not_cut_off_by_the_read_timeout(impatient):
    # Every send ends in the middle of a request, for longer than the timeout: the client is active.
    with RawConnection(impatient.port) as conn:
        wire = b"".join(request("POST", f"/invocations?i={i}", b"x") for i in range(40))
        step = len(wire) // 40 + 7
        for start in range(0, len(wire), step):
            conn.send(wire[start:start + step])
            time.sleep(0.1)
        statuses = [conn.read_response().status for _ in range(40)]
    assert statuses == [200] * 40


def test_paused_connection_is_not_cut_off_by_the_read_timeout(impatient):
    # 80 requests of 100 ms in one send: the server stops reading at 64 outstanding and resumes at 32,
    # a pause of over 3 s (longer than the 2 s timeout) with the rest, a partial request likely among
    # it, waiting in the socket. Time the server itself is not reading does not count.
    count = 80
    with RawConnection(impatient.port, timeout=60) as conn:
        conn.send(b"".join(request("POST", f"/invocations?sleep=0.1&i={i}", b"x" * 10_000) for i in range(count)))
        responses = [conn.read_response() for _ in range(count)]
    assert [r.status for r in responses] == [200] * count


# -- memory budget for request bodies -----------------------------------------------------------------


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    env = {"SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB": "2", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}
    with _start(tmp_path_factory, "budgeted", env=env) as server:
        yield server.wait_ready()


MB = 1024 * 1024


def _head(size: int) -> bytes:
    return b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size


def test_request_over_the_budget_is_503_before_its_body_is_read(budgeted):
    holders = [RawConnection(budgeted.port) for _ in range(2)]
    try:
        for conn in holders:  # two requests of 1 MB being received hold the whole 2 MB budget
            conn.send(_head(MB) + b"a" * 1000)
        # A pipelined answer proves the server parsed the holders' heads before the third one arrives.
        with RawConnection(budgeted.port) as probe:
            probe.send(request("GET", "/ping"))
            assert probe.read_response().status == 200
        with RawConnection(budgeted.port) as third:
            third.send(_head(MB))
            refused = third.read_response()  # no body was sent: the answer cannot wait for it
            assert refused.status == 503
            assert refused.headers["retry-after"] == "1"
            assert "SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB" in refused.json()["message"]
            assert third.is_closed_by_peer()
        for conn in holders:
            conn.send(b"a" * (MB - 1000))
            assert conn.read_response().status == 200
    finally:
        for conn in holders:
            conn.close()
    with RawConnection(budgeted.port) as again:  # the budget was given back
        again.send(_head(MB) + b"b" * MB)
        assert again.read_response().status == 200


def test_chunked_body_crossing_the_budget_is_cut_off(budgeted):
    holders = [RawConnection(budgeted.port) for _ in range(2)]
    try:
        holders[0].send(_head(MB) + b"a")  # 1 MB of the 2 MB budget
        with RawConnection(budgeted.port) as chunked:
            chunked.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunked.send(b"%x\r\n%s\r\n" % (512 * 1024, b"c" * 512 * 1024))  # fits: 1.5 MB held
            with RawConnection(budgeted.port) as probe:  # answered after the server read the chunk above
                probe.send(request("GET", "/ping"))
                assert probe.read_response().status == 200
            holders[1].send(_head(400 * 1024) + b"b")  # 1.9 MB held
            with RawConnection(budgeted.port) as probe:  # answered after the server read the head above
                probe.send(request("GET", "/ping"))
                assert probe.read_response().status == 200
            chunked.send(b"%x\r\n%s\r\n" % (200 * 1024, b"c" * 200 * 1024))  # crosses 2 MB
            response = chunked.read_response()
            assert response.status == 503
            assert chunked.is_closed_by_peer()
        holders[0].send(b"a" * (MB - 1))
        assert holders[0].read_response().status == 200
        holders[1].send(b"b" * (400 * 1024 - 1))
        assert holders[1].read_response().status == 200
    finally:
        for conn in holders:
            conn.close()


def test_a_client_that_leaves_gives_its_budget_back(budgeted):
    for _ in range(5):  # 5 x 1 MB abandoned halfway: without the release the 2 MB budget would be gone
        with RawConnection(budgeted.port) as conn:
            conn.send(_head(MB) + b"a" * 1000)
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while True:
        with RawConnection(budgeted.port) as conn:
            conn.send(_head(MB) + b"b" * MB)
            status = conn.read_response().status
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


# -- idle connections cannot exhaust the file descriptors ---------------------------------------------


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_idle_connections_past_the_fd_limit_do_not_lock_others_out(serve, model_dir):
    directory = model_dir("", **{"code/inspect_service.py": INSPECT_SERVICE})
    server = serve(argv=["prlimit", "--nofile=128:128", sys.executable, "-m", "sagemaker_inference", "serve",
                         "--host", "127.0.0.1", "--model-dir", str(directory), "--handler", "inspect_service",
                         "--workers", "1"])
    idle = []
    try:
        for _ in range(150):  # more than the server may hold open (3/4 of its 128 descriptors)
            idle.append(RawConnection(server.port))
            idle[-1].send(request("GET", "/ping"))
            idle[-1].read_response()
        for i in range(5):  # newcomers are served: idle connections made room for them
            with RawConnection(server.port) as fresh:
                fresh.send(request("POST", f"/invocations?i={i}", b"x"))
                assert _seen(fresh.read_response())["params"]["i"] == str(i)
        assert sum(conn.is_closed_by_peer(timeout=0.01) for conn in idle) >= 150 - 96
    finally:
        for conn in idle:
            conn.close()


def test_past_the_connection_cap_with_nothing_idle_a_newcomer_gets_503(tmp_path_factory):
    with _start(tmp_path_factory, "capped", env={"SAGEMAKER_MAX_CONNECTIONS": "5"}) as server:
        server.wait_ready()
        busy = [RawConnection(server.port) for _ in range(5)]
        try:
            for conn in busy[:4]:  # each mid-request: closing any would lose it
                conn.send(_head(10) + b"abc")
            busy[4].send(request("GET", "/ping"))  # answered once the server has read the others
            assert busy[4].read_response().status == 200
            busy[4].send(_head(10) + b"abc")
            with RawConnection(server.port) as newcomer:
                refused = newcomer.read_response()
                assert refused.status == 503
                assert "SAGEMAKER_MAX_CONNECTIONS" in refused.json()["message"]
            for conn in busy:
                conn.send(b"defghij")
                assert _seen(conn.read_response())["body"] == "abcdefghij"
        finally:
            for conn in busy:
                conn.close()
