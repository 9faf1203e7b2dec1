"""The ``multi-model-server`` and ``model-archiver`` commands, driven as framework containers drive
them, with the properties file the SageMaker toolkit writes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sagemaker_inference import model_server
from sagemaker_inference.mms_compat import processes
from tests.e2e.conftest import ECHO_MODEL
from tests.e2e.serverproc import free_port, write_model

BIN = Path(sys.executable).parent
UPSTREAM_ARCHIVER = Path("/work/upstream-venv/bin/model-archiver")
LOG_CONFIG = model_server.DEFAULT_MMS_LOG_FILE
DEADLINE = 60.0

# What sagemaker-inference 1.10.1's _create_model_server_config_file writes (default-mms.properties,
# then the generated lines), plus one key MMS does not know.
TOOLKIT_PROPERTIES = """\
# Based on: https://github.com/awslabs/multi-model-server/blob/master/docs/configuration.md
enable_envvars_config=true
decode_input_request=false
load_models=ALL
default_response_timeout=60
default_workers_per_model=1
inference_address=http://127.0.0.1:{port}
management_address=http://127.0.0.1:{port}
vmargs=-XX:-UseContainerSupport
default_service_handler={handler}
frobnicate=1
"""
MME_PROPERTIES = """\
enable_envvars_config=true
model_store=/
default_service_handler=$$SAGEMAKER_HANDLER$$
default_workers_per_model=1
async_logging=true
decode_input_request=false
default_response_timeout=60
inference_address=http://127.0.0.1:{port}
management_address=http://127.0.0.1:{port}
vmargs=-XX:-UseContainerSupport
"""
CUSTOM_HANDLER = """\
class Service:
    def initialize(self, context):
        self.name = context.manifest["model"]["modelName"]

    def handle(self, data, context):
        return [f"{self.name} saw {row['body'].decode()}" for row in data]
"""


class Container:
    """An environment like a container's: own temp dir (so its own pid file) and port."""

    def __init__(self, root: Path, env: dict[str, str] | None = None):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "tmp").mkdir(exist_ok=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MMS_"))}
        self.env = {**inherited, "TMPDIR": str(root / "tmp"), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_path = root / "server.log"
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def properties(self, template: str, **values: str) -> Path:
        path = self.root / "sagemaker-mms.properties"
        path.write_text(template.format(port=self.port, **values))
        return path

    def run(self, *args: str, command: str = "multi-model-server") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / command), *args], env=self.env, cwd=self.root, capture_output=True,
                              text=True, timeout=DEADLINE)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """The command with its output (and the background server's) in ``server.log``."""
        with open(self.log_path, "ab") as log:
            return subprocess.Popen([str(BIN / "multi-model-server"), *args], env=self.env, cwd=self.root,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @contextlib.contextmanager
    def foreground(self, *args: str) -> Iterator[subprocess.Popen[bytes]]:
        """``--start --foreground`` (the command becomes the server); killed at the end if still running."""
        proc = self.start("--start", "--foreground", *args)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        """SIGTERM, as a container runtime sends it; the exit code."""
        proc.send_signal(signal.SIGTERM)
        return proc.wait(DEADLINE)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_leftovers()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def pid(self) -> int | None:
        try:
            return int((self.root / "tmp" / processes.PID_FILE_NAME).read_text())
        except (OSError, ValueError):
            return None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                if self.client.get("/ping", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready within {DEADLINE} s:\n{self.log}")

    def kill_leftovers(self) -> None:
        pid = self.pid()
        if pid is not None and processes.is_server(pid):
            for child in _children(pid):
                os.kill(child, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        self.client.close()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if not processes.is_server(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    with Container(tmp_path) as made:
        yield made


def test_start_returns_then_the_toolkit_lookup_finds_the_server(container: Container, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model = write_model(tmp_path / "model", ECHO_MODEL)
    props = container.properties(TOOLKIT_PROPERTIES, handler="sagemaker_inference.default_handler_service")
    args = ("--start", "--model-store", "/", "--mms-config", str(props), "--log-config", LOG_CONFIG,
            "--models", f"model={model}")
    launcher = container.start(*args)
    assert launcher.wait(DEADLINE) == 0  # returns while the server keeps running in the background
    pid = container.pid()
    assert pid is not None and pid != launcher.pid

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    found = model_server._retry_retrieve_mms_server_process(30)
    assert found.pid == pid
    assert processes.MMS_NAMESPACE in processes.cmdline(pid)

    container.wait_ready()
    response = container.client.post("/invocations", json={"hello": [1, 2]})
    assert response.status_code == 200 and response.json() == {"hello": [1, 2]}
    assert "unknown MMS property 'frobnicate' ignored" in container.log

    again = container.run(*args)
    assert again.returncode == 1 and "already running" in again.stdout

    stopped = container.run("--stop")
    assert stopped.returncode == 0 and "Model server stopped." in stopped.stdout
    found.wait(DEADLINE)  # what the toolkits block on: returns once the server has gone
    assert _gone(pid)
    assert container.pid() is None
    assert "not currently running" in container.run("--stop").stdout


def test_foreground_is_the_server_and_sigterm_stops_it(container: Container, tmp_path: Path) -> None:
    write_model(tmp_path / "model", ECHO_MODEL)
    props = container.properties(TOOLKIT_PROPERTIES, handler="sagemaker_inference.default_handler_service")
    with container.foreground("--model-store", str(tmp_path), "--mms-config", str(props), "--models", "model") as proc:
        container.wait_ready()
        assert container.pid() == proc.pid  # the launcher became the server
        assert container.client.post("/invocations", json=[3]).json() == [3]
        assert container.stop(proc) == 0
        assert container.pid() is None


def test_mme_properties_select_multi_model_mode(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_model(models / "echo", ECHO_MODEL)
    container = Container(tmp_path, {"SAGEMAKER_HANDLER": "sagemaker_inference.default_handler_service",
                                     "SAGEMAKER_MODEL_ROOT": str(models)})
    props = container.properties(MME_PROPERTIES)
    with container, container.foreground("--model-store", "/", "--mms-config", str(props),
                                         "--log-config", LOG_CONFIG) as proc:
        container.wait_ready()
        assert container.client.get("/models").json() == {"models": []}
        loaded = container.client.post("/models", json={"model_name": "echo", "url": str(models / "echo")})
        assert loaded.status_code == 200, loaded.text
        assert container.client.post("/models/echo/invoke", json={"x": 1}).json() == {"x": 1}
        outside = container.client.post("/models", json={"model_name": "etc", "url": "/etc"})
        assert outside.status_code == 400  # model_store=/ does not open the whole disk
        assert container.client.delete("/models/echo").status_code == 200
        assert container.stop(proc) == 0


def test_several_models_are_served_by_name(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_model(store / "first", ECHO_MODEL)
    write_model(store / "second", ECHO_MODEL, **{"custom_handler.py": CUSTOM_HANDLER,
                                                 "MAR-INF/MANIFEST.json": '{"model": {"modelName": "second", '
                                                                          '"handler": "custom_handler"}}'})
    container = Container(tmp_path)
    props = container.properties(TOOLKIT_PROPERTIES, handler="sagemaker_inference.default_handler_service")
    with container, container.foreground("--model-store", str(store), "--mms-config", str(props),
                                         "--models", "a=first", "b=second") as proc:
        container.wait_ready()
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and not all('"READY"' in container.client.get(f"/models/{name}").text
                                                      for name in ("a", "b")):
            time.sleep(0.05)
        assert {m["modelName"] for m in container.client.get("/models").json()["models"]} == {"a", "b"}
        assert container.client.post("/invocations?model_name=a", json=[1]).json() == [1]
        assert container.client.post("/models/b/invoke", content=b"x").text == "second saw x"  # its manifest
        assert container.client.post("/invocations", json=[1]).status_code == 400  # which model? (as MMS)
        assert container.client.delete("/models/a").status_code == 200
        assert container.stop(proc) == 0


@pytest.mark.parametrize(("properties", "args", "message"), [
    ("", ("--mms-config", "missing.properties"), "--mms-config file not found"),
    ("", ("--log-config", "missing.xml"), "--log-config file not found"),
    ("", ("--model-store", "no-such-dir"), "--model-store directory not found"),
    ("", ("--models", "model=/opt/ml/model"), "--model-store is required"),
    ("inference_address=https://0.0.0.0:8443\n", (), "TLS is not served"),
    ("default_service_handler=$$NOT_SET_ANYWHERE$$\n", (), "Invalid Environment Variable NOT_SET_ANYWHERE"),
    ("default_workers_per_model=many\n", (), "default_workers_per_model='many': expected an integer"),
    ("load_models=a=/,a=/\n", (), "a model name is used twice"),
    ("load_models=m=https://example.com/m.mar\n", (), "is a remote URL"),
])
def test_bad_configuration_fails_the_command_with_one_line(container: Container, properties: str,
                                                            args: tuple[str, ...], message: str) -> None:
    props = container.properties(properties)
    result = container.run("--start", *(args if "--mms-config" in args else ("--mms-config", str(props), *args)))
    assert result.returncode == 1, result
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert container.pid() is None


def _archive(container: Container, command: Path, model: Path, export: Path) -> Path:
    export.mkdir()
    result = subprocess.run([str(command), "--model-name", "tiny", "--handler", "custom_handler", "--model-path",
                             str(model), "--export-path", str(export), "--archive-format", "no-archive", "--f"],
                            env=container.env, capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    return export / "tiny"


def test_archiver_no_archive_as_the_hub_path_runs_it_and_the_server_serves_it(container: Container,
                                                                              tmp_path: Path) -> None:
    model = write_model(tmp_path / "src", ECHO_MODEL, **{"custom_handler.py": CUSTOM_HANDLER, "weights.bin": "w"})
    (model / "__pycache__").mkdir()
    (model / "__pycache__" / "x.pyc").write_text("")
    folder = _archive(container, BIN / "model-archiver", model, tmp_path / "export")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["MAR-INF/MANIFEST.json", "code/inference.py", "custom_handler.py", "weights.bin"]
    manifest = (folder / "MAR-INF" / "MANIFEST.json").read_text()
    if UPSTREAM_ARCHIVER.exists():  # byte for byte what MMS's model-archiver 1.0.3 writes
        upstream = _archive(container, UPSTREAM_ARCHIVER, model, tmp_path / "upstream")
        assert manifest == (upstream / "MAR-INF" / "MANIFEST.json").read_text()
        assert files == sorted(str(p.relative_to(upstream)) for p in upstream.rglob("*") if p.is_file())
    assert json.loads(manifest)["model"] == {"modelName": "tiny", "handler": "custom_handler"}

    props = container.properties(TOOLKIT_PROPERTIES, handler="sagemaker_inference.default_handler_service")
    # load_models=ALL: the one folder in the store, handler from its manifest
    with container.foreground("--model-store", str(tmp_path / "export"), "--mms-config", str(props)) as proc:
        container.wait_ready()
        assert container.client.post("/invocations", content=b"hi").text == "tiny saw hi"
        assert container.stop(proc) == 0


def test_archiver_refuses_to_overwrite_without_force(container: Container, tmp_path: Path) -> None:
    model = write_model(tmp_path / "src", ECHO_MODEL)
    (tmp_path / "export" / "tiny").mkdir(parents=True)
    result = container.run("--model-name", "tiny", "--handler", "h", "--model-path", str(model), "--export-path",
                           str(tmp_path / "export"), "--archive-format", "no-archive", command="model-archiver")
    assert result.returncode == 1 and "already exists" in result.stderr
    shutil.rmtree(tmp_path / "export")
