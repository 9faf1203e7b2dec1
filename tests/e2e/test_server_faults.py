"""Faults and lifecycle against the real server: hanging and dying workers, /ping before the
model is loaded, startup failures, SIGTERM with requests in flight, user output in the log.

Waits are bounded polls with generous deadlines, never sleeps that assume a speed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx

DEADLINE = 15.0

# Requests are JSON objects: {"id": ..., "sleep": seconds, "hang": bool, "exit": bool, "block": bool};
# "block" waits until the test creates the file "release" in the model dir.
# Each request leaves a marker file with the worker's PID when it starts, so a test can act
# while it is known to be in flight.
CONTROLLED_MODEL = """
import json, os, pathlib, time

def model_fn(model_dir):
    return pathlib.Path(model_dir)

def transform_fn(model, data, content_type, accept):
    request = json.loads(data)
    (model / "started-{}".format(request["id"])).write_text(str(os.getpid()))
    if request.get("exit"):
        os._exit(3)
    if request.get("hang"):
        time.sleep(3600)
    while request.get("block") and not (model / "release").exists():
        time.sleep(0.01)
    time.sleep(request.get("sleep", 0))
    return json.dumps({"id": request["id"], "pid": os.getpid()}), "application/json"
"""


def wait_for(predicate: Callable[[], object], timeout: float = DEADLINE, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(f"{what} not met within {timeout} s")


def started_pid(directory: Path, request_id: str) -> int:
    marker = directory / f"started-{request_id}"
    wait_for(lambda: marker.exists() and marker.read_text(), what=f"request {request_id} started")
    return int(marker.read_text())


def post(client: httpx.Client, request: dict) -> httpx.Response:
    return client.post("/invocations", content=json.dumps(request), headers={"Content-Type": "application/json"},
                       timeout=30.0)


def assert_json_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == status and body["message"]
    return body


# -- hanging handler -------------------------------------------------------------------------------


def test_hanging_handler_gets_504_and_is_replaced(serve, model_dir):
    directory = model_dir(CONTROLLED_MODEL)
    server = serve("--model-dir", str(directory), workers=2, env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "2"})
    with ThreadPoolExecutor(max_workers=1) as pool:
        hung = pool.submit(post, server.client, {"id": "hang", "hang": True})
        stuck_pid = started_pid(directory, "hang")
        # While a worker is stuck in user code: /ping and requests to the other worker are served.
        assert server.client.get("/ping").status_code == 200
        other = post(server.client, {"id": "other"})
        assert other.status_code == 200 and other.json()["pid"] != stuck_pid
        response = hung.result(timeout=DEADLINE)
    assert_json_error(response, 504)
    wait_for(lambda: stuck_pid not in server.worker_pids(), what="stuck worker killed")
    wait_for(lambda: len(server.worker_pids()) == 2, what="replacement worker started")
    for i in range(4):
        assert post(server.client, {"id": f"after-{i}"}).status_code == 200
    assert server.client.get("/ping").status_code == 200


def test_a_busy_worker_does_not_hold_requests_a_free_worker_could_serve(serve, model_dir):
    # One request occupies a worker for as long as the test wants; every other request must be
    # served by the other worker meanwhile, not queued behind the busy one.
    directory = model_dir(CONTROLLED_MODEL)
    server = serve("--model-dir", str(directory), workers=2)
    with ThreadPoolExecutor(max_workers=9) as pool:
        blocked = pool.submit(post, server.client, {"id": "blocker", "block": True})
        busy_pid = started_pid(directory, "blocker")
        try:
            futures = [pool.submit(post, server.client, {"id": f"quick-{i}"}) for i in range(8)]
            for future in futures:
                response = future.result(timeout=10.0)
                assert response.status_code == 200
                assert response.json()["pid"] != busy_pid
            assert not blocked.done()
        finally:
            (directory / "release").write_text("")
        assert blocked.result(timeout=DEADLINE).status_code == 200


def test_timeout_seconds_variable_wins(serve, model_dir):
    directory = model_dir(CONTROLLED_MODEL)
    server = serve("--model-dir", str(directory), workers=1,
                   env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "600", "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "1"})
    assert_json_error(post(server.client, {"id": "hang", "hang": True}), 504)
    wait_for(lambda: server.client.get("/ping").status_code == 200, what="healthy again")
    assert post(server.client, {"id": "after"}).status_code == 200


# -- dying workers ---------------------------------------------------------------------------------


def test_worker_killed_mid_load(serve, model_dir):
    directory = model_dir(CONTROLLED_MODEL)
    server = serve("--model-dir", str(directory), workers=2)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures: list[Future[httpx.Response]] = [
            pool.submit(post, server.client, {"id": f"load-{i}", "sleep": 0.3}) for i in range(8)]
        victim = started_pid(directory, "load-0")
        os.kill(victim, signal.SIGKILL)
        responses = [f.result(timeout=DEADLINE) for f in futures]  # never a hang
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 500}, statuses
    assert 500 in statuses  # the request running on the killed worker
    for response in responses:
        if response.status_code == 500:
            assert_json_error(response, 500)
        else:
            assert response.json()["pid"] != victim or response.json()["id"] != "load-0"
    wait_for(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 2,
             what="killed worker replaced")
    for i in range(4):
        response = post(server.client, {"id": f"after-{i}"})
        assert response.status_code == 200
        assert response.json()["pid"] != victim


def test_worker_exiting_in_user_code(serve, model_dir):
    directory = model_dir(CONTROLLED_MODEL)
    server = serve("--model-dir", str(directory), workers=1)
    assert_json_error(post(server.client, {"id": "exit", "exit": True}), 500)
    wait_for(lambda: post(server.client, {"id": "probe"}).status_code == 200, what="worker restarted")


def test_model_whose_workers_keep_dying_is_unhealthy(serve, model_dir):
    # model_fn succeeds once, then fails on every reload: after a crash the model cannot come back.
    source = CONTROLLED_MODEL.replace("def model_fn(model_dir):\n", """def model_fn(model_dir):
    flag = pathlib.Path(model_dir) / "loaded-once"
    if flag.exists():
        raise RuntimeError("reload refused")
    flag.write_text("x")
""")
    directory = model_dir(source)
    server = serve("--model-dir", str(directory), workers=1)
    assert post(server.client, {"id": "first"}).status_code == 200
    assert_json_error(post(server.client, {"id": "exit", "exit": True}), 500)
    wait_for(lambda: server.client.get("/ping").status_code == 503, what="/ping reports unhealthy")
    assert server.client.get("/ping").json() == {"status": "Unhealthy"}
    wait_for(lambda: "reload refused" in server.log, what="a log line naming the failure")


# -- startup ---------------------------------------------------------------------------------------


SLOW_LOAD_MODEL = """
import time

def model_fn(model_dir):
    time.sleep(3)
    return "slow"

def transform_fn(model, data, content_type, accept):
    return model
"""


def test_ping_is_503_until_the_model_is_loaded(serve, model_dir):
    server = serve("--model-dir", str(model_dir(SLOW_LOAD_MODEL)), ready=False)
    server.wait_listening()
    response = server.client.get("/ping")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert server.client.post("/invocations", content=b"x").status_code == 503
    server.wait_ready()
    assert server.client.get("/ping").json() == {"status": "Healthy"}
    assert server.client.post("/invocations", content=b"x").text == "slow"


def _startup_failure(serve, directory: Path, *args: str) -> tuple[int, str]:
    server = serve("--model-dir", str(directory), *args, ready=False)
    code = server.wait_exit(DEADLINE)
    return code, server.log


def test_model_fn_raising_exits_non_zero_with_one_clear_line(serve, model_dir):
    directory = model_dir("""
        def model_fn(model_dir):
            raise FileNotFoundError("model.pth is missing")
    """)
    code, log = _startup_failure(serve, directory)
    assert code != 0
    lines = [line for line in log.splitlines() if "startup failed" in line]
    assert len(lines) == 1, log
    assert "model.pth is missing" in lines[0]


def test_syntax_error_in_user_code_exits_non_zero(serve, model_dir):
    code, log = _startup_failure(serve, model_dir("def model_fn(model_dir)\n    return 1\n"))
    assert code != 0
    assert len([line for line in log.splitlines() if "startup failed" in line]) == 1, log
    assert "SyntaxError" in log


def test_unknown_handler_exits_non_zero(serve, model_dir):
    code, log = _startup_failure(serve, model_dir(CONTROLLED_MODEL), "--handler", "no_such_module_here")
    assert code != 0
    assert "no_such_module_here" in log


def test_bad_configuration_exits_with_a_message(serve, model_dir):
    server = serve("--model-dir", str(model_dir(CONTROLLED_MODEL)), ready=False,
                   env={"SAGEMAKER_MODEL_SERVER_WORKERS": "many"})
    assert server.wait_exit(DEADLINE) != 0
    assert "SAGEMAKER_MODEL_SERVER_WORKERS" in server.log


def test_port_in_use_exits_non_zero(serve, model_dir):
    directory = str(model_dir(CONTROLLED_MODEL))
    first = serve("--model-dir", directory)
    clash = serve("--model-dir", directory, "--port", str(first.port), ready=False)  # the last --port wins
    assert clash.wait_exit(DEADLINE) != 0
    assert str(first.port) in clash.log
    assert "choose another port with --port" in clash.log
    assert first.client.get("/ping").status_code == 200


# -- shutdown --------------------------------------------------------------------------------------


def test_sigterm_finishes_in_flight_requests_and_exits_0(serve, model_dir):
    directory = model_dir(CONTROLLED_MODEL)
    server = serve("--model-dir", str(directory), workers=2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(post, server.client, {"id": f"drain-{i}", "sleep": 0.5}) for i in range(6)]
        started_pid(directory, "drain-0")
        workers = server.worker_pids()
        server.proc.send_signal(signal.SIGTERM)
        responses = [f.result(timeout=DEADLINE) for f in futures]
    assert [r.status_code for r in responses] == [200] * 6
    assert sorted(r.json()["id"] for r in responses) == sorted(f"drain-{i}" for i in range(6))
    assert server.wait_exit(DEADLINE) == 0
    for pid in workers:  # no orphaned workers
        wait_for(lambda pid=pid: not _alive(pid), what=f"worker {pid} gone")


def test_sigint_stops_like_sigterm(serve, model_dir):
    server = serve("--model-dir", str(model_dir(CONTROLLED_MODEL)))
    server.proc.send_signal(signal.SIGINT)
    assert server.wait_exit(DEADLINE) == 0


def test_idle_server_stops_quickly_and_refuses_new_connections(serve, model_dir):
    server = serve("--model-dir", str(model_dir(CONTROLLED_MODEL)))
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit(DEADLINE) == 0
    try:
        server.client.get("/ping", timeout=2.0)
        raise AssertionError("the server still answers after exiting")
    except httpx.TransportError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return bool(status.strip()) and not status.strip().startswith("Z")


# -- logs ------------------------------------------------------------------------------------------


PRINTING_MODEL = """
import sys

def model_fn(model_dir):
    print("model_fn says hello")
    return None

def transform_fn(model, data, content_type, accept):
    print("predict saw", data)
    print("to stderr", file=sys.stderr)
    return "ok"
"""


def test_user_output_reaches_the_server_log(serve, model_dir):
    # PYTHONUNBUFFERED unset, as in most containers: the worker's output must not sit in a buffer.
    # (The port comes from SAGEMAKER_BIND_TO_PORT, which the harness sets.)
    server = serve(argv=["env", "-u", "PYTHONUNBUFFERED", sys.executable, "-m", "sagemaker_inference", "serve",
                         "--host", "127.0.0.1", "--workers", "1", "--model-dir", str(model_dir(PRINTING_MODEL))])
    assert server.client.post("/invocations", content=b"marker-123", headers={"Content-Type": "text/csv"}).text == "ok"
    wait_for(lambda: "model_fn says hello" in server.log, what="model_fn output in the log")
    wait_for(lambda: "predict saw marker-123" in server.log, what="predict output in the log")
    wait_for(lambda: "to stderr" in server.log, what="stderr in the log")


def test_no_log_line_per_request_by_default(serve, model_dir):
    server = serve("--model-dir", str(model_dir(CONTROLLED_MODEL)))
    before = server.log.count("\n")
    for i in range(20):
        assert post(server.client, {"id": f"quiet-{i}"}).status_code == 200
    assert server.log.count("\n") - before < 5, server.log
    [startup] = [line for line in server.log.splitlines() if "ready on http://127.0.0.1" in line]
    assert "1 worker" in startup and "ready in" in startup


def test_access_log_switch(serve, model_dir):
    server = serve("--model-dir", str(model_dir(CONTROLLED_MODEL)), env={"SAGEMAKER_ACCESS_LOG": "true"})
    for i in range(3):
        assert post(server.client, {"id": f"logged-{i}"}).status_code == 200
    wait_for(lambda: server.log.count("/invocations") >= 3, what="one access line per request")


def test_container_log_level_is_honoured(serve, model_dir):
    server = serve("--model-dir", str(model_dir(CONTROLLED_MODEL)), env={"SAGEMAKER_CONTAINER_LOG_LEVEL": "ERROR"})
    assert post(server.client, {"id": "quiet"}).status_code == 200
    assert "ready on" not in server.log  # an INFO line
    assert "[INFO]" not in server.log


def test_sigterm_while_the_model_is_loading_exits_0(serve, model_dir):
    server = serve("--model-dir", str(model_dir(SLOW_LOAD_MODEL.replace("time.sleep(3)", "time.sleep(60)"))),
                   ready=False)
    server.wait_listening()
    assert server.client.get("/ping").status_code == 503
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit(DEADLINE) == 0
