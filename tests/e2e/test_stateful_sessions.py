"""Stateful (sticky) sessions against the real server: create, use, close, expire, affinity to the
worker that holds the state, spread over workers, a worker dying under a session, disabled."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from tests.e2e.test_server_faults import wait_for

SESSION_HEADER = "X-Amzn-SageMaker-Session-Id"

CHAT_MODEL = """
import json, os, pathlib

STATE = {}  # session id -> messages so far: lives in this worker's memory

def model_fn(model_dir):
    return pathlib.Path(model_dir)

def transform_fn(model, data, content_type, accept, context):
    session = context.get_request_header(0, "X-Amzn-SageMaker-Session-Id")
    history = STATE.setdefault(session, [])
    history.append(json.loads(data) if data else None)
    return json.dumps({"pid": os.getpid(), "session": session, "history": history}), "application/json"

def close_session_fn(session_id, model):
    STATE.pop(session_id, None)
    (model / ("closed-" + session_id)).write_text(str(os.getpid()))
"""

EXPIRES = re.compile(r"^([A-Za-z0-9](-*[A-Za-z0-9])*); Expires=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def session_server(serve, model_dir):
    directory = model_dir(CHAT_MODEL)
    server = serve("--model-dir", str(directory), workers=2, env={"SAGEMAKER_ENABLE_STATEFUL_SESSIONS": "true"})
    server.model_dir = directory
    return server


def new_session(server) -> str:
    response = server.client.post("/invocations", json={"requestType": "NEW_SESSION"})
    assert response.status_code == 200, response.text
    value = response.headers["X-Amzn-SageMaker-New-Session-Id"]
    match = EXPIRES.match(value)
    assert match, value
    return match.group(1)


def say(server, session: str, text: object):
    return server.client.post("/invocations", json=text, headers={SESSION_HEADER: session})


def test_a_session_keeps_its_state_on_its_worker(session_server):
    session = new_session(session_server)
    answers = [say(session_server, session, f"turn {i}").json() for i in range(6)]
    assert len({a["pid"] for a in answers}) == 1  # always the same worker
    assert answers[-1]["history"] == [f"turn {i}" for i in range(6)] and answers[-1]["session"] == session


def test_new_sessions_go_to_the_worker_with_the_fewest(session_server):
    sessions = [new_session(session_server) for _ in range(4)]
    pids = [say(session_server, s, "hi").json()["pid"] for s in sessions]
    assert sorted(pids.count(p) for p in set(pids)) == [2, 2]


def test_close_runs_the_hook_on_the_worker_and_forgets_the_id(session_server):
    session = new_session(session_server)
    pid = say(session_server, session, "hi").json()["pid"]
    response = session_server.client.post("/invocations", json={"requestType": "CLOSE"},
                                          headers={SESSION_HEADER: session})
    assert response.status_code == 200 and response.headers["X-Amzn-SageMaker-Closed-Session-Id"] == session
    assert (session_server.model_dir / f"closed-{session}").read_text() == str(pid)
    after = say(session_server, session, "again")
    assert after.status_code == 400 and "Unknown or expired" in after.json()["message"]


def test_session_request_errors_are_400(session_server):
    assert say(session_server, "no-such-session", "hi").status_code == 400
    response = session_server.client.post("/invocations", json={"requestType": "CLOSE"})
    assert response.status_code == 400 and SESSION_HEADER in response.json()["message"]
    response = session_server.client.post("/invocations", json={"requestType": "REBOOT"})
    assert response.status_code == 400 and "NEW_SESSION or CLOSE" in response.json()["message"]
    ordinary = session_server.client.post("/invocations", json={"text": "no session"})
    assert ordinary.status_code == 200 and ordinary.json()["session"] is None


def test_sessions_expire_and_the_hook_runs(serve, model_dir):
    directory = model_dir(CHAT_MODEL)
    server = serve("--model-dir", str(directory), env={"SAGEMAKER_ENABLE_STATEFUL_SESSIONS": "true",
                                                       "SAGEMAKER_SESSIONS_EXPIRATION": "1"})
    session = new_session(server)
    assert say(server, session, "hi").status_code == 200
    wait_for(lambda: (directory / f"closed-{session}").exists(), what="close_session_fn at expiry")
    assert say(server, session, "late").status_code == 400


def test_worker_death_loses_the_session_never_moves_it(session_server):
    session = new_session(session_server)
    pid = say(session_server, session, "hi").json()["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid not in session_server.worker_pids(), what="the worker to be gone")
    # (a request that was running on it when it died gets 500 "Worker died.", as any other)
    response = wait_for(lambda: (r := say(session_server, session, "hi again")).status_code != 500 and r,
                        what="the death to be noticed")
    assert response.status_code == 400 and "session lost" in response.json()["message"]
    wait_for(lambda: session_server.client.get("/ping").status_code == 200, timeout=30, what="the worker replaced")
    assert say(session_server, session, "still?").status_code == 400
    fresh = new_session(session_server)
    assert say(session_server, fresh, "new").json()["history"] == ["new"]


def test_session_cap_is_503(serve, model_dir):
    server = serve("--model-dir", str(model_dir(CHAT_MODEL)),
                   env={"SAGEMAKER_ENABLE_STATEFUL_SESSIONS": "true", "SAGEMAKER_MAX_STATEFUL_SESSIONS": "2"})
    new_session(server)
    new_session(server)
    assert server.client.post("/invocations", json={"requestType": "NEW_SESSION"}).status_code == 503


def test_disabled_session_bodies_reach_the_handler(serve, model_dir):
    server = serve("--model-dir", str(model_dir(CHAT_MODEL)))
    response = server.client.post("/invocations", content=json.dumps({"requestType": "NEW_SESSION"}),
                                  headers={"Content-Type": "application/json", SESSION_HEADER: "anything"})
    assert response.status_code == 200
    assert "X-Amzn-SageMaker-New-Session-Id" not in response.headers
    assert response.json()["history"] == [{"requestType": "NEW_SESSION"}]


ORDER_MODEL = """
import pathlib

def model_fn(model_dir):
    return pathlib.Path(model_dir)

def transform_fn(model, data, content_type, accept):
    with open(model / "calls", "a") as f:
        f.write("turn\\n")
    return data

def close_session_fn(session_id, model):
    with open(model / "calls", "a") as f:
        f.write("close\\n")
"""


def test_close_runs_after_the_requests_sent_before_it(serve, model_dir):
    """Pipelined on one connection: two turns then CLOSE; the hook must not overtake the turns."""
    from tests.e2e.rawhttp import RawConnection

    directory = model_dir(ORDER_MODEL)
    server = serve("--model-dir", str(directory), env={"SAGEMAKER_ENABLE_STATEFUL_SESSIONS": "true"})
    session = new_session(server)

    def post(body: bytes) -> bytes:
        head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Session-Id: %s\r\n" % session.encode()
        return head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    conn = RawConnection(server.port)
    try:
        conn.send(post(b'"one"') + post(b'"two"') + post(b'{"requestType": "CLOSE"}'))
        statuses = [conn.read_response().status for _ in range(3)]
    finally:
        conn.sock.close()
    assert statuses == [200, 200, 200]
    assert (directory / "calls").read_text().split() == ["turn", "turn", "close"]
