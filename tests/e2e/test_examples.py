"""Every example under ``examples/`` served by the real server and asked for a prediction.

Models are built on the fly by the examples' own scripts (in a subprocess, the way a user runs
them), never downloaded. The PyTorch and scikit-learn examples are skipped when their framework
is not installed (``pip install -e '.[test]'`` installs both).
"""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.serverproc import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
JSON = {"Content-Type": "application/json"}

# The linear model shared by the PyTorch, batching and bundled examples: y = x @ W + b.
WEIGHT = np.array([[1.0, 0.5], [2.0, -1.0], [0.0, 1.0], [-1.0, 0.25]])
BIAS = np.array([0.5, -0.5])
ROWS = [[1, 2, 3, 4], [5, 6, 7, 8]]
PREDICTIONS = [[1.5, 2.0], [9.5, 5.0]]


def _require(module: str) -> None:
    """Skip (not error) without the framework; cheaper than importing it into the test process."""
    if find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")


def _run_script(script: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, timeout=120)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# --- pytorch: the toolkit's four steps -------------------------------------------------------

PYTORCH = EXAMPLES / "pytorch"


@pytest.fixture(scope="module")
def torch_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require("torch")
    base = tmp_path_factory.mktemp("opt_ml")
    _run_script(PYTORCH / "make_model.py", str(base / "model"))
    return base / "model"


@pytest.fixture(scope="module")
def torch_server(torch_model_dir: Path) -> Iterator[ServerProcess]:
    """One server for the content-type tests: torch takes seconds to import in a worker."""
    server = ServerProcess(["--model-dir", str(torch_model_dir), "--handler", "torch_serving.handler_service",
                            "--workers", "1"], env={"PYTHONPATH": str(PYTORCH)})
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_pytorch_json(torch_server: ServerProcess) -> None:
    response = torch_server.client.post("/invocations", json=ROWS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == PREDICTIONS


def test_pytorch_csv(torch_server: ServerProcess) -> None:
    response = torch_server.client.post("/invocations", content=b"1,2,3,4\n5,6,7,8\n",
                                        headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv"
    assert response.text == "1.5,2.0\n9.5,5.0\n"


def test_pytorch_npy(torch_server: ServerProcess) -> None:
    response = torch_server.client.post("/invocations", content=_npy(np.array(ROWS, dtype=np.float32)),
                                        headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-npy"
    result = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, PREDICTIONS)


def test_pytorch_seed_entrypoint_serves(serve, torch_model_dir: Path) -> None:
    """Step 4 as written: ``dockerd-entrypoint.py serve`` -> serving.main() -> start_model_server."""
    server = serve(argv=[sys.executable, str(PYTORCH / "dockerd-entrypoint.py"), "serve"],
                   env={"PYTHONPATH": str(PYTORCH), "SAGEMAKER_BASE_DIR": str(torch_model_dir.parent),
                        "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    response = server.client.post("/invocations", json=ROWS[:1])
    assert response.status_code == 200, response.text
    assert response.json() == PREDICTIONS[:1]
    assert server.stop() == 0


# --- scikit-learn ------------------------------------------------------------------------------

# One iris flower of each species, in the dataset's order: setosa, versicolor, virginica.
IRIS = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]


def test_sklearn(serve, tmp_path: Path) -> None:
    _require("sklearn")
    _run_script(EXAMPLES / "sklearn" / "train.py", str(tmp_path / "model"))
    server = serve("--model-dir", str(tmp_path / "model"))

    response = server.client.post("/invocations", json=IRIS)
    assert response.status_code == 200, response.text
    assert response.json() == [0, 1, 2]

    csv = "".join(",".join(map(str, row)) + "\n" for row in IRIS)
    response = server.client.post("/invocations", content=csv, headers={"Content-Type": "text/csv",
                                                                        "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.text == "0\n1\n2\n"


# --- multi-model endpoint ---------------------------------------------------------------------


def test_multi_model(serve, tmp_path: Path) -> None:
    base = tmp_path / "opt_ml"
    _run_script(EXAMPLES / "multi-model" / "make_models.py", str(base / "models"))
    server = serve(env={"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_BASE_DIR": str(base)})
    client = server.client

    for name in ("fahrenheit", "kelvin"):  # what SageMaker sends when a model is first invoked
        response = client.post("/models", json={"model_name": name, "url": str(base / "models" / name / "model")})
        assert response.status_code == 200, response.text
    assert sorted(m["modelName"] for m in client.get("/models").json()["models"]) == ["fahrenheit", "kelvin"]

    celsius = [100, 0, 20]
    response = client.post("/models/fahrenheit/invoke", json=celsius)
    assert response.status_code == 200, response.text
    assert response.json() == [212.0, 32.0, 68.0]
    response = client.post("/invocations", json=celsius, headers={"X-Amzn-SageMaker-Target-Model": "kelvin"})
    assert response.status_code == 200, response.text
    assert response.json() == [373.15, 273.15, 293.15]

    assert client.delete("/models/kelvin").status_code == 200
    assert client.post("/models/kelvin/invoke", json=celsius).status_code == 404
    assert client.post("/models/fahrenheit/invoke", json=celsius).status_code == 200


# --- batching ----------------------------------------------------------------------------------


def _batching_requests() -> list[tuple[dict[str, str], bytes, object]]:
    """(headers, body, expected) for 24 different requests: JSON, CSV and NPY, some malformed."""
    requests: list[tuple[dict[str, str], bytes, object]] = []
    for i in range(24):
        rows = np.array([[i, 1, 0, 0], [0, 0, i, 1]][: 1 + i % 2], dtype=np.float64)
        expected = (rows @ WEIGHT + BIAS).tolist()
        if i % 8 == 7:  # three rows of 3 numbers: this request alone gets a 400
            requests.append((JSON, b"[[1, 2, 3]]", 400))
        elif i % 3 == 0:
            requests.append((JSON, str(rows.tolist()).encode(), expected))
        elif i % 3 == 1:
            csv = "".join(",".join(str(v) for v in row) + "\n" for row in rows.tolist())
            requests.append(({"Content-Type": "text/csv", "Accept": "application/json"}, csv.encode(), expected))
        else:
            requests.append(({"Content-Type": "application/x-npy", "Accept": "application/json"}, _npy(rows),
                             expected))
    return requests


async def _send_all(url: str, requests: list[tuple[dict[str, str], bytes, object]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        return await asyncio.gather(*(client.post("/invocations", content=body, headers=headers)
                                      for headers, body, _ in requests))


def test_batching_concurrent_requests_get_their_own_results(serve, tmp_path: Path) -> None:
    _run_script(EXAMPLES / "batching" / "make_model.py", str(tmp_path / "model"))
    server = serve("--model-dir", str(tmp_path / "model"), "--batch-size", "8", "--max-batch-delay", "200",
                   "--log-level", "debug")
    requests = _batching_requests()

    responses = asyncio.run(_send_all(server.url, requests))

    for (_, _, expected), response in zip(requests, responses):
        if expected == 400:
            assert response.status_code == 400, response.text
            assert "expected rows of 4 numbers" in response.json()["message"]
        else:
            assert response.status_code == 200, response.text
            assert response.json() == expected
    batch_sizes = [int(n) for n in re.findall(r"predict_batch_fn: (\d+) inputs", server.log)]
    assert max(batch_sizes) > 1, "the server never handed the model more than one request at a time"
