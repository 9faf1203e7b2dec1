"""Worker processes as the operating system sees them, against the real server: a worker whose
forked child outlives it, programs started by user code, real-time signals, a respawn that fails.

Waits are bounded polls with generous deadlines, never sleeps that assume a speed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import httpx

from tests.e2e.test_server_faults import assert_json_error, wait_for

DEADLINE = 20.0

# model_fn starts helpers that outlive a crash of the worker: a forked child (as a multiprocessing
# pool's are: it inherits every fd, close-on-exec or not) and a program started with close_fds=False.
FORKING_MODEL = """
import json, os, pathlib, subprocess, time

def model_fn(model_dir):
    child = os.fork()
    if child == 0:
        time.sleep(600)
        os._exit(0)
    helper = subprocess.Popen(["sleep", "600"], close_fds=False)
    (pathlib.Path(model_dir) / "helper-{}".format(os.getpid())).write_text("{} {}".format(helper.pid, child))
    return helper

def transform_fn(model, data, content_type, accept):
    request = json.loads(data)
    if request.get("exit"):
        os._exit(3)
    return json.dumps({"pid": os.getpid()}), "application/json"
"""


def _post(client: httpx.Client, request: dict, timeout: float = 30.0) -> httpx.Response:
    return client.post("/invocations", content=json.dumps(request), headers={"Content-Type": "application/json"},
                       timeout=timeout)


def _state(pid: int) -> str:
    """The process state letter from /proc (``Z`` for a zombie), or "" once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def _helpers(directory: Path, worker: int) -> tuple[int, int]:
    """The pids of the exec'd helper and the forked child that worker ``worker`` started."""
    marker = directory / f"helper-{worker}"
    wait_for(lambda: marker.exists() and marker.read_text(), timeout=DEADLINE, what="helpers started")
    helper, child = marker.read_text().split()
    return int(helper), int(child)


def test_worker_death_is_noticed_while_a_forked_child_holds_its_socket(serve, model_dir):
    directory = model_dir(FORKING_MODEL)
    # A response timeout far beyond the client's: only noticing the death can answer in time.
    server = serve("--model-dir", str(directory), env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "600"})
    (worker,) = server.worker_pids()
    assert _post(server.client, {}).json()["pid"] == worker
    _, child = _helpers(directory, worker)
    assert "3" in os.listdir(f"/proc/{child}/fd")  # the forked child holds the worker's socket
    assert_json_error(_post(server.client, {"exit": True}), 500)
    wait_for(lambda: _post(server.client, {}, timeout=10).status_code == 200, timeout=DEADLINE,
             what="a replacement worker serves")
    assert server.client.get("/ping").status_code == 200
    assert "still holds its socket" in server.log


def test_programs_started_by_user_code_get_neither_our_socket_nor_ignored_signals(serve, model_dir):
    directory = model_dir(FORKING_MODEL)
    server = serve("--model-dir", str(directory))
    (worker,) = server.worker_pids()
    helper, _ = _helpers(directory, worker)
    assert "3" not in os.listdir(f"/proc/{helper}/fd")  # the worker's socket is close-on-exec
    ignored = int(next(line for line in Path(f"/proc/{helper}/status").read_text().splitlines()
                       if line.startswith("SigIgn:")).split()[1], 16)
    assert not ignored & (1 << (signal.SIGTERM - 1)) and not ignored & (1 << (signal.SIGINT - 1))
    os.kill(helper, signal.SIGTERM)
    wait_for(lambda: _state(helper) in ("", "Z"), timeout=DEADLINE, what="helper ended by SIGTERM")


ECHO_PID_MODEL = """
import os

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    return str(os.getpid()), "text/plain"
"""


def test_a_worker_killed_by_a_realtime_signal_does_not_stop_reaping(serve, model_dir):
    server = serve("--model-dir", str(model_dir(ECHO_PID_MODEL)))
    (first,) = server.worker_pids()
    os.kill(first, signal.SIGRTMIN + 6)
    wait_for(lambda: server.worker_pids() and server.worker_pids() != [first], timeout=DEADLINE,
             what="worker replaced")
    wait_for(lambda: "killed by SIGRTMIN+6" in server.log, timeout=DEADLINE, what="the exit is logged")
    # Housekeeping still runs: the next dead worker is reaped, not left a zombie.
    (second,) = wait_for(lambda: [p for p in server.worker_pids() if p != first], timeout=DEADLINE,
                         what="second worker")
    os.kill(second, signal.SIGKILL)
    wait_for(lambda: _state(second) == "", timeout=DEADLINE, what="second worker reaped")
    wait_for(lambda: server.client.post("/invocations", content=b"x").status_code == 200, timeout=DEADLINE,
             what="served again")


def test_a_failed_respawn_is_retried_instead_of_leaving_the_model_dead(serve, model_dir, tmp_path):
    # The server's interpreter is reached through a symlink we can take away: spawning a
    # replacement then fails (as EMFILE or ENOMEM would), and must be retried.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    real = Path(sys.executable)
    if sys.prefix != sys.base_prefix:
        shutil.copy(Path(sys.prefix) / "pyvenv.cfg", venv / "pyvenv.cfg")
    python = venv / "bin" / "python"
    python.symlink_to(real)
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    server = serve(env=env, argv=[str(python), "-m", "sagemaker_inference", "serve", "--host", "127.0.0.1",
                                  "--workers", "1", "--model-dir", str(model_dir(ECHO_PID_MODEL))])
    (worker,) = server.worker_pids()
    python.unlink()
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: "could not start" in server.log, timeout=DEADLINE, what="the failed spawn is logged")
    assert server.client.get("/ping").status_code == 503
    python.symlink_to(real)
    wait_for(lambda: server.client.get("/ping").status_code == 200, timeout=DEADLINE, what="healthy again")
    assert server.client.post("/invocations", content=b"x").status_code == 200
