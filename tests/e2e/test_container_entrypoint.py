"""The container entrypoint against an ``/opt/ml``-shaped directory (no Docker engine needed).

``SAGEMAKER_BASE_DIR`` stands in for ``/opt/ml``; ``SAGEMAKER_BIND_TO_PORT`` is set by the test
harness to a free port, as SageMaker sets it. The PID 1 test runs the entrypoint as the init of a
new PID namespace (``unshare``), which is what a container is, and is skipped where that is not
permitted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.serverproc import ServerProcess, write_model

ENTRYPOINT = shutil.which("sagemaker-inference-entrypoint", path=os.path.dirname(sys.executable))

SLOW_ECHO_MODEL = """
import json
import time

def model_fn(model_dir):
    return None

def input_fn(data, content_type):
    return json.loads(data)

def predict_fn(data, model):
    if data.get("sleep"):
        print("slow request started", flush=True)
        time.sleep(data["sleep"])
    return data

def output_fn(prediction, accept):
    return json.dumps(prediction)
"""

# model_fn leaves an orphan behind (``sleep`` started in the background by a shell that exits):
# it is re-parented to PID 1, which must reap it when it exits.
ORPHAN_MODEL = """
import subprocess

def model_fn(model_dir):
    subprocess.run(["sh", "-c", "sleep 2 &"], check=True)
    return None

def predict_fn(data, model):
    return data
"""


@pytest.fixture
def opt_ml(tmp_path: Path) -> Path:
    """``<tmp>/opt/ml`` with ``model/code/inference.py``, as SageMaker mounts it."""
    base = tmp_path / "opt" / "ml"
    write_model(base / "model", SLOW_ECHO_MODEL)
    return base


def _entrypoint() -> str:
    assert ENTRYPOINT, "console script sagemaker-inference-entrypoint is not installed (pip install -e .)"
    return ENTRYPOINT


def _env(base: Path) -> dict[str, str]:
    return {"SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}


def test_serve_binds_to_port_and_sigterm_drains_then_exits_0(serve, opt_ml: Path) -> None:
    server = serve(argv=[_entrypoint(), "serve"], env=_env(opt_ml))
    assert server.client.post("/invocations", json={"a": 1}).json() == {"a": 1}

    slow: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: slow.update(r=server.client.post("/invocations", json={"sleep": 0.5})))
    thread.start()
    deadline = time.monotonic() + 10
    while "slow request started" not in server.log and time.monotonic() < deadline:
        time.sleep(0.02)  # the signal must arrive while the slow request runs in the worker
    server.proc.send_signal(signal.SIGTERM)
    thread.join(10)

    assert slow["r"].status_code == 200
    assert server.wait_exit(10) == 0


def test_no_arguments_means_serve(serve, opt_ml: Path) -> None:
    server = serve(argv=[_entrypoint()], env=_env(opt_ml))
    assert server.client.post("/invocations", json={"b": 2}).json() == {"b": 2}
    assert server.stop() == 0


def test_model_that_cannot_load_exits_non_zero(tmp_path: Path) -> None:
    write_model(tmp_path / "model", "def model_fn(model_dir):\n    raise RuntimeError('no weights')\n")
    server = ServerProcess([], env=_env(tmp_path), argv=[_entrypoint(), "serve"])
    try:
        assert server.wait_exit(30) != 0
        assert "no weights" in server.log
    finally:
        server.stop()


def test_serve_takes_no_flags() -> None:
    result = subprocess.run([_entrypoint(), "serve", "--workers", "2"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "environment variables" in result.stderr


def test_other_arguments_replace_the_process() -> None:
    proc = subprocess.Popen([_entrypoint(), "sh", "-c", 'echo "$$ $0"; exit 3', "first-arg"],
                            stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert out.split() == [str(proc.pid), "first-arg"]  # same PID: exec'd, not a child


def test_unknown_command_exits_127() -> None:
    result = subprocess.run([_entrypoint(), "no-such-command-here"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 127
    assert "command not found" in result.stderr


# --- PID 1 ----------------------------------------------------------------------------------------


def _children(pid: int) -> dict[int, tuple[str, str]]:
    """``{child pid: (state, command name)}`` from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == pid:
            children[int(entry)] = (state, comm)
    return children


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def unshare() -> str:
    path = shutil.which("unshare")
    if path is None or sys.platform != "linux":
        pytest.skip("needs util-linux unshare (Linux)")
    if subprocess.run([path, "--pid", "--fork", "true"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("creating a PID namespace is not permitted here")
    return path


def test_as_pid_1_reaps_orphans_and_exits_0_on_sigterm(unshare: str, tmp_path: Path) -> None:
    write_model(tmp_path / "model", ORPHAN_MODEL)
    server = ServerProcess([], env=_env(tmp_path), argv=[unshare, "--pid", "--fork", "--kill-child", _entrypoint()])
    try:
        server.wait_ready()
        init = next(iter(_children(server.proc.pid)))  # our entrypoint, PID 1 in the namespace
        assert _wait_for(lambda: any(comm == "sleep" for _, comm in _children(init).values())), \
            "the orphan was not re-parented to PID 1"
        assert _wait_for(lambda: all(comm != "sleep" for _, comm in _children(init).values())), \
            f"the orphan was not reaped: {_children(init)}"

        os.kill(init, signal.SIGTERM)  # PID 1 gets only signals it handles: the server must
        assert server.wait_exit(15) == 0  # unshare exits with its child's status
    finally:
        server.stop()
