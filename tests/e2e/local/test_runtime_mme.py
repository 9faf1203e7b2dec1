"""TargetModel on a multi-model endpoint: boto3 -> emulator -> our server in multi-model mode."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from tests.e2e.local.runtimeproc import emulator, runtime_client
from tests.e2e.serverproc import ServerProcess, write_model

pytest.importorskip("boto3")

NAMED = """
import json, os, time
from pathlib import Path

def model_fn(model_dir):
    gate = Path(model_dir) / "gate"
    if gate.exists():  # a slow load: wait until the test opens the gate (named in the file)
        opened = Path(gate.read_text())
        deadline = time.monotonic() + 60
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    return (Path(model_dir) / "name").read_text()

def transform_fn(model, data, content_type, accept):
    return json.dumps({"model": model, "input": data.decode() if isinstance(data, bytes) else data}), accept
"""


def make_model(directory: Path, name: str, **files: str) -> Path:
    return write_model(directory, NAMED, name=name, **files)


def archive(model: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for item in sorted(model.rglob("*")):
            tar.add(item, arcname=str(item.relative_to(model)), recursive=False)
    return path


@pytest.fixture
def mme(tmp_path):
    """(client, model-data dir, model root, server): a multi-model server whose memory fits one 60 MiB model."""
    data, root = tmp_path / "model-data", tmp_path / "models"
    data.mkdir()
    root.mkdir()
    server = ServerProcess(["--workers", "1", "--model-root", str(root)],
                           env={"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_MEMORY_LIMIT_MB": "100"})
    rt = None
    try:
        server.wait_ready()
        rt = emulator("--endpoint", f"mme={server.url}", "--model-data", str(data), "--model-root", str(root),
                      "--model-load-wait", "1")
        yield runtime_client(rt.url), data, root, server
    finally:
        if rt is not None:
            rt.stop()
        server.stop()


def invoke_once(client, target: str, body: bytes = b"x") -> dict:
    answer = client.invoke_endpoint(EndpointName="mme", TargetModel=target, Body=body, ContentType="text/plain",
                                    Accept="application/json")
    return json.loads(answer["Body"].read())


def invoke(client, target: str, body: bytes = b"x", timeout: float = 60.0) -> dict:
    """As a client of a multi-model endpoint does: retry while the model is not ready (a load may outlast the
    emulator's 1 s wait on a busy machine), within a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return invoke_once(client, target, body)
        except client.exceptions.ModelNotReadyException:
            assert time.monotonic() < deadline, f"{target} never finished loading"
            time.sleep(0.05)


def test_target_model_archive_and_folder_load_on_first_use(mme, tmp_path):
    client, data, root, server = mme
    archive(make_model(tmp_path / "src-a", "model-a"), data / "a.tar.gz")
    make_model(data / "group" / "b", "model-b")
    assert server.client.get("/models").json()["models"] == []
    assert invoke(client, "a.tar.gz", b"one") == {"model": "model-a", "input": "one"}
    assert invoke(client, "group/b") == {"model": "model-b", "input": "x"}
    assert invoke(client, "a.tar.gz", b"two") == {"model": "model-a", "input": "two"}
    loaded = server.client.get("/models").json()["models"]
    assert len(loaded) == 2
    for model in loaded:  # extracted under the model root, as the platform does
        assert Path(model["modelUrl"]).is_relative_to(root)


def test_missing_or_escaping_target_model_is_validation_error(mme):
    client = mme[0]
    for target in ("missing.tar.gz", "../outside", "/etc"):
        with pytest.raises(client.exceptions.ValidationError):
            invoke_once(client, target)


def test_slow_load_answers_model_not_ready_while_it_goes_on(mme, tmp_path):
    client, data, _, server = mme
    opened = tmp_path / "opened"
    make_model(data / "slow", "model-slow", gate=str(opened))
    with pytest.raises(client.exceptions.ModelNotReadyException) as raised:
        invoke_once(client, "slow")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    with pytest.raises(client.exceptions.ModelNotReadyException):  # still loading: the same load, not a second
        invoke_once(client, "slow")
    opened.touch()
    assert invoke(client, "slow") == {"model": "model-slow", "input": "x"}
    assert len(server.client.get("/models").json()["models"]) == 1


def test_507_unloads_the_least_recently_used_model_and_retries(mme):
    client, data, _, server = mme
    for name in ("one", "two", "three"):
        make_model(data / name, f"model-{name}", memory_mb="60")  # the server's budget (100 MiB) fits one
    assert invoke(client, "one")["model"] == "model-one"
    assert invoke(client, "two")["model"] == "model-two"
    assert invoke(client, "three")["model"] == "model-three"
    assert invoke(client, "one")["model"] == "model-one"
    assert len(server.client.get("/models").json()["models"]) == 1


def test_load_failure_is_model_error(mme):
    client, data, _, _ = mme
    write_model(data / "broken", "def model_fn(model_dir):\n    raise RuntimeError('cannot load')\n")
    with pytest.raises(client.exceptions.ModelError) as raised:
        invoke(client, "broken")
    assert raised.value.response["OriginalStatusCode"] == 500


def test_unsafe_archive_is_refused(mme, tmp_path):
    client, data, root, _ = mme
    with tarfile.open(data / "evil.tar.gz", "w:gz") as tar:
        payload = b"x"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(client.exceptions.ValidationError):
        invoke(client, "evil.tar.gz")
    assert not (root.parent / "escaped.txt").exists()
    assert not list(root.rglob("escaped.txt"))
