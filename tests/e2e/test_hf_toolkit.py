"""The Hugging Face inference toolkit (sagemaker-huggingface-inference-toolkit 2.6.0, from PyPI)
on our package: its container entrypoint, unchanged, single- and multi-model, and no JVM.

The toolkit runs ``multi-model-server --start ...`` and waits on the process it finds; here that
is our server. Skipped when transformers, torch or the toolkit are not installed (``.ci/run``
installs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sagemaker_huggingface_inference_toolkit")
psutil = pytest.importorskip("psutil")

from tests.e2e import hf_tiny_model  # noqa: E402
from tests.e2e.serverproc import free_port  # noqa: E402

pytestmark = pytest.mark.slow

ENTRYPOINT = Path(__file__).with_name("hf_entrypoint.py")
READY_TIMEOUT = 180.0  # imports transformers and torch twice (toolkit, then worker) on a busy machine
MMS_NAMESPACE = "com.amazonaws.ml.mms.ModelServer"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hf_tiny_model.build(tmp_path_factory.mktemp("hf") / "tiny")


class HFContainer:
    """``serving.main()`` in a subprocess laid out like the DLC: ``$SAGEMAKER_BASE_DIR/model``."""

    def __init__(self, root: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "tmp").mkdir(exist_ok=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MMS_", "HF_"))}
        self.env = {**inherited, "SAGEMAKER_BASE_DIR": str(root / "ml"), "SAGEMAKER_BIND_TO_PORT": str(self.port),
                    "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "HF_TASK": "text-classification", "TMPDIR": str(root / "tmp"),
                    "HF_TEST_MMS_CONFIG_FILE": str(root / "sagemaker-mms.properties"), **(env or {})}
        self.log_path = root / "container.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, str(ENTRYPOINT)], env=self.env, cwd=root, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.client = httpx.Client(base_url=self.url, timeout=60.0)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> HFContainer:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"container exited with {self.proc.returncode}:\n{self.log}")
            try:
                if self.client.get("/ping", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready after {READY_TIMEOUT} s:\n{self.log}")

    def tree(self) -> list[psutil.Process]:
        """Live processes under the entrypoint (the launcher's zombie is left for the toolkit to reap,
        as in the container)."""
        return [p for p in psutil.Process(self.proc.pid).children(recursive=True) if _alive(p)]

    def server(self) -> psutil.Process:
        servers = [p for p in self.tree() if MMS_NAMESPACE in p.cmdline()]
        assert len(servers) == 1, [p.cmdline() for p in self.tree()]
        return servers[0]

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            for child in self.tree():
                child.kill()
            self.proc.kill()
            self.proc.wait(10)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_no_java(container: HFContainer) -> None:
    processes = [psutil.Process(container.proc.pid), *container.tree()]
    for process in processes:
        names = {process.name(), os.path.basename(process.exe())}
        assert "java" not in names, process.cmdline()
        assert not any("model-server.jar" in part or part == "-cp" for part in process.cmdline()), process.cmdline()


def assert_classified(response: httpx.Response, count: int) -> None:
    assert response.status_code == 200, response.text
    predictions = response.json()
    assert len(predictions) == count
    for prediction in predictions:
        assert prediction["label"] in hf_tiny_model.LABELS.values()
        assert 0.0 <= prediction["score"] <= 1.0


def test_single_model_container(tiny_model: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_model, tmp_path / "ml" / "model")
    container = HFContainer(tmp_path)
    try:
        container.wait_ready()
        assert container.client.get("/ping").json() == {"status": "Healthy"}
        response = container.client.post("/invocations", json={"inputs": ["i love this movie", "terrible plot"]})
        assert_classified(response, 2)
        assert response.headers["content-type"].startswith("application/json")

        bad = container.client.post("/invocations", content=b'{"inputs": [', headers={"content-type":
                                                                                  "application/json"})
        assert bad.status_code == 400, bad.text
        assert_classified(container.client.post("/invocations", json={"inputs": "a good film"}), 1)

        server = container.server()
        assert server.ppid() == container.proc.pid  # re-parented to the entrypoint, as to PID 1 in a container
        assert any("sagemaker_inference.server.workers.process" in " ".join(p.cmdline())
                   for p in server.children())
        assert (tmp_path / "sagemaker-mms.properties").read_text().count("default_service_handler="
                                                                         "sagemaker_huggingface_inference_toolkit") == 1
        assert_no_java(container)

        assert container.terminate() == 0
        assert not psutil.pid_exists(server.pid) or server.status() == psutil.STATUS_ZOMBIE
    finally:
        container.close()
    assert "Failed to reap children process" not in container.log


def test_multi_model_container(tiny_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "ml" / "models"
    shutil.copytree(tiny_model, models / "tiny" / "model")
    container = HFContainer(tmp_path, {"SAGEMAKER_MULTI_MODEL": "true"})
    try:
        container.wait_ready()
        assert container.client.get("/models").json() == {"models": []}
        loaded = container.client.post("/models", json={"model_name": "tiny", "url": str(models / "tiny" / "model")})
        assert loaded.status_code == 200, loaded.text
        response = container.client.post("/models/tiny/invoke", json={"inputs": ["not very fun", "great actor"]},
                                         headers={"X-Amzn-SageMaker-Target-Model": "tiny"})
        assert_classified(response, 2)
        assert_no_java(container)

        assert container.client.delete("/models/tiny").status_code == 200
        assert container.client.post("/models/tiny/invoke", json={"inputs": "fun"}).status_code == 404
        assert container.terminate() == 0
    finally:
        container.close()
