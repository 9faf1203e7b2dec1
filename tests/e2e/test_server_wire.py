"""Faults on the wire against the real server (issue 16): what a broken or hostile client sends,
answered with a clear status while everyone else keeps being served. Raw sockets throughout:
these are the cases HTTP client libraries will not produce."""

from __future__ import annotations

import json

import pytest

from tests.e2e.rawhttp import RawConnection, request
from tests.e2e.serverproc import ServerProcess, write_model

# Function-form handler service that shows what it was given: query parameters, headers, body.
INSPECT_SERVICE = """
import json

def handle(data, context):
    if data is None:
        return None
    out = []
    for idx, item in enumerate(data):
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
