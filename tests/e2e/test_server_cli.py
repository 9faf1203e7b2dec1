"""The entry points: ``python -m sagemaker_inference serve``, the ``sagemaker-inference`` console
script, and ``model_server.start_model_server`` from a user's serving script (seed step 3)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.conftest import ECHO_MODEL
from tests.e2e.serverproc import write_model

CONSOLE_SCRIPT = shutil.which("sagemaker-inference", path=str(Path(sys.executable).parent))


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv", [
    [sys.executable, "-m", "sagemaker_inference", "serve", "--help"],
    [sys.executable, "-m", "sagemaker_inference", "--help"],
])
def test_module_help(argv):
    result = _run(*argv)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    if "serve" in argv:
        for flag, variable in [("--port", "SAGEMAKER_BIND_TO_PORT"), ("--workers", "SAGEMAKER_MODEL_SERVER_WORKERS"),
                               ("--handler", "SAGEMAKER_HANDLER"), ("--log-level", "SAGEMAKER_CONTAINER_LOG_LEVEL"),
                               ("--model-dir", None), ("--host", None)]:
            assert flag in result.stdout
            assert variable is None or variable in result.stdout


@pytest.mark.skipif(CONSOLE_SCRIPT is None, reason="console script not installed in this environment")
def test_console_script_help():
    result = _run(CONSOLE_SCRIPT, "serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout


@pytest.mark.skipif(CONSOLE_SCRIPT is None, reason="console script not installed in this environment")
def test_console_script_serves_the_bundled_example(serve):
    server = serve(argv=[CONSOLE_SCRIPT, "serve", "--example", "--host", "127.0.0.1", "--workers", "1"])
    response = server.client.post("/invocations", content=b"[[1, 2, 3, 4]]",
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_bad_flag_value_exits_2_with_a_message():
    result = _run(sys.executable, "-m", "sagemaker_inference", "serve", "--workers", "0", "--port", "0")
    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_env_configures_the_server(serve, model_dir):
    # No --model-dir or --workers: SAGEMAKER_BASE_DIR and the worker variable decide.
    base = model_dir(ECHO_MODEL, name="opt_ml/model").parent
    server = serve(argv=[sys.executable, "-m", "sagemaker_inference", "serve", "--host", "127.0.0.1"],
                   env={"SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
                        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "3"})
    assert server.client.post("/invocations", json={"x": 1}).json() == {"x": 1}
    assert server.client.get("/execution-parameters").json() == {
        "MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 3}
    assert len(server.worker_pids()) == 2


# -- start_model_server -------------------------------------------------------------------------------

SERVING_SCRIPT = """
from sagemaker_inference import model_server

if __name__ == "__main__":
    model_server.start_model_server({handler})
"""

CUSTOM_HANDLER_SERVICE = """
from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer


class HandlerService(DefaultHandlerService):
    def __init__(self):
        super().__init__(transformer=Transformer())
"""


def _opt_ml(tmp_path: Path, inference_py: str = ECHO_MODEL, **files: str) -> Path:
    """A ``/opt/ml``-shaped tree: ``<base>/model/code/inference.py``."""
    base = tmp_path / "opt_ml"
    write_model(base / "model", inference_py, **files)
    return base


def _serving_script(tmp_path: Path, handler: str = "") -> Path:
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(SERVING_SCRIPT.format(handler=handler)))
    return script


def test_start_model_server_serves_the_model(serve, tmp_path):
    base = _opt_ml(tmp_path)
    server = serve(argv=[sys.executable, str(_serving_script(tmp_path))], env={"SAGEMAKER_BASE_DIR": str(base),
                                                                              "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    response = server.client.post("/invocations", json={"hello": "world"})
    assert response.status_code == 200
    assert response.json() == {"hello": "world"}
    assert server.client.get("/ping").json() == {"status": "Healthy"}
    server.proc.send_signal(signal.SIGTERM)  # seed step 4: the container stops with SIGTERM
    assert server.wait_exit(15) == 0


def test_start_model_server_with_a_handler_service_module(serve, tmp_path):
    base = _opt_ml(tmp_path, **{"code/my_handler_service.py": CUSTOM_HANDLER_SERVICE})
    script = _serving_script(tmp_path, handler='"my_handler_service"')
    server = serve(argv=[sys.executable, str(script)], env={"SAGEMAKER_BASE_DIR": str(base),
                                                            "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    assert server.client.post("/invocations", json=[1, 2]).json() == [1, 2]


def test_start_model_server_exits_non_zero_when_the_model_cannot_load(serve, tmp_path):
    base = _opt_ml(tmp_path, "def model_fn(model_dir):\n    raise RuntimeError('weights not found')\n")
    server = serve(argv=[sys.executable, str(_serving_script(tmp_path))], ready=False,
                   env={"SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    assert server.wait_exit(30) != 0
    assert "weights not found" in server.log


def test_start_model_server_fails_fast_when_pip_cannot_reach_an_index(serve, tmp_path):
    base = _opt_ml(tmp_path, **{"code/requirements.txt": "surely-not-installed-package-xyz==1.0\n"})
    # A closed local port as the index: no network, an immediate connection refusal.
    env = {"SAGEMAKER_BASE_DIR": str(base), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_RETRIES": "0", "PIP_FIND_LINKS": ""}
    server = serve(argv=[sys.executable, str(_serving_script(tmp_path))], ready=False, env=env)
    assert server.wait_exit(60) != 0
    assert "requirements.txt" in server.log
