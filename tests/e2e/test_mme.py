"""Multi-model endpoints against the real server: lifecycle, listing, describe, every error status.

The helpers here (model sources, ``start_mme``, ``register``) are shared by ``test_mme_safety.py``
and ``test_mme_concurrency.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.serverproc import ServerProcess, write_model

TARGET = "X-Amzn-SageMaker-Target-Model"

# Default handler service, model_fn / predict_fn; says which model answered.
MODEL_FN = """
import json

def model_fn(model_dir):
    return {name!r}

def input_fn(data, content_type):
    return json.loads(data)

def predict_fn(data, model):
    return {{"model": model, "data": data}}

def output_fn(prediction, accept):
    return json.dumps(prediction)
"""

# Default handler service, transform_fn only: a different user-module shape.
TRANSFORM_FN = """
import json

def model_fn(model_dir):
    return "transform"

def transform_fn(model, data, content_type, accept):
    return json.dumps({"model": model, "data": json.loads(data), "transformed": True}), "application/json"
"""

# A custom handler service (function form, as MMS calls it), selected with the ``handler`` field.
SERVICE = """
import json

def handle(data, context):
    if data is None:
        return None
    return [json.dumps({"model": "service", "size": len(item.get("body") or b"")}) for item in data]
"""

FAILING = """
def model_fn(model_dir):
    raise RuntimeError("cannot load this model")
"""


def add_model(root: Path, name: str, source: str | None = None, **files: str) -> Path:
    """A model dir ``<root>/<name>`` with ``code/inference.py`` (default: MODEL_FN answering ``name``)."""
    return write_model(root / name, source if source is not None else MODEL_FN.format(name=name), **files)


def start_mme(root: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """A multi-model server over ``root``, ready (``/ping`` 200), one worker per model."""
    server = ServerProcess(["--workers", "1", "--model-root", str(root), *args],
                           env={"SAGEMAKER_MULTI_MODEL": "true", **(env or {})})
    try:
        return server.wait_ready()
    except BaseException:
        server.stop()
        raise


def register(server: ServerProcess, name: str, url: str, **fields: Any) -> httpx.Response:
    return server.client.post("/models", json={"model_name": name, "url": url, **fields})


def invoke(server: ServerProcess, name: str, payload: object = (1, 2)) -> httpx.Response:
    return server.client.post("/invocations", json=list(payload) if isinstance(payload, tuple) else payload,
                              headers={TARGET: name})


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["code"] == response.status_code
    return response.status_code, body["type"], body["message"]


def names(server: ServerProcess, **query: Any) -> list[str]:
    response = server.client.get("/models", params=query)
    assert response.status_code == 200
    return [m["modelName"] for m in response.json()["models"]]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """One server for the read-mostly tests of this module, with a 64 MiB model memory budget."""
    root = tmp_path_factory.mktemp("mme") / "models"
    root.mkdir()
    server = start_mme(root, env={"SAGEMAKER_MODEL_MEMORY_LIMIT_MB": "64"})
    yield server, root
    server.stop()


# -- lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_with_three_models_of_different_handlers(tmp_path):
    root = tmp_path / "models"
    add_model(root, "alpha")
    add_model(root, "beta", TRANSFORM_FN)
    add_model(root, "gamma", "raise ImportError('the default handler must not be used')\n",
              **{"service.py": SERVICE})
    with start_mme(root) as server:
        assert server.client.get("/ping").json() == {"status": "Healthy"}
        assert names(server) == []
        response = register(server, "alpha", str(root / "alpha"))
        assert (response.status_code, response.json()) == (200, {"status": "Workers scaled"})
        response = server.client.post("/models", params={"model_name": "beta", "url": "beta"})  # query form
        assert (response.status_code, response.json()) == (200, {"status": "Workers scaled"})
        assert register(server, "gamma", str(root / "gamma"), handler="service:handle").status_code == 200

        listing = server.client.get("/models").json()
        assert listing == {"models": [{"modelName": "alpha", "modelUrl": str(root / "alpha")},
                                      {"modelName": "beta", "modelUrl": "beta"},
                                      {"modelName": "gamma", "modelUrl": str(root / "gamma")}]}
        described = server.client.get("/models/beta").json()
        assert described["modelName"] == "beta" and described["modelUrl"] == "beta"
        assert described["minWorkers"] == described["maxWorkers"] == 1
        assert [w["status"] for w in described["workers"]] == ["READY"]

        assert invoke(server, "alpha", [1]).json() == {"model": "alpha", "data": [1]}
        assert invoke(server, "beta", [2]).json() == {"model": "transform", "data": [2], "transformed": True}
        assert invoke(server, "gamma", [3]).json() == {"model": "service", "size": 3}
        via_path = server.client.post("/models/alpha/invoke", json=[4])
        assert via_path.json() == {"model": "alpha", "data": [4]}
        via_query = server.client.post("/invocations", params={"model_name": "beta"}, json=[5])
        assert via_query.json()["data"] == [5]

        response = server.client.delete("/models/beta")
        assert (response.status_code, response.json()) == (200, {"status": 'Model "beta" unregistered'})
        assert error(invoke(server, "beta")) == (404, "ModelNotFoundException", "Model not found: beta")
        assert error(server.client.get("/models/beta"))[0] == 404
        assert error(server.client.delete("/models/beta"))[0] == 404
        assert names(server) == ["alpha", "gamma"]
        assert invoke(server, "alpha", [6]).json()["data"] == [6]
        assert invoke(server, "gamma", [7]).status_code == 200

        # The name is free again, and the model loads afresh.
        assert register(server, "beta", "beta").status_code == 200
        assert invoke(server, "beta", [8]).json()["data"] == [8]


def test_sagemaker_handler_is_the_default_handler(tmp_path):
    root = tmp_path / "models"
    add_model(root, "m", "raise ImportError('not this one')\n", **{"service.py": SERVICE})
    with start_mme(root, env={"SAGEMAKER_HANDLER": "service"}) as server:
        assert register(server, "m", "m").status_code == 200
        assert invoke(server, "m", [1, 2]).json() == {"model": "service", "size": 5}


def test_archive_in_sagemaker_layout_is_served_and_removed_on_unload(tmp_path):
    import tarfile

    root, scratch = tmp_path / "models", tmp_path / "scratch"
    scratch.mkdir()
    source = add_model(tmp_path / "build", "packed")
    (root / "0123abcd" / "model").mkdir(parents=True)
    with tarfile.open(root / "0123abcd" / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(source, arcname=".")
    with start_mme(root, env={"TMPDIR": str(scratch)}) as server:
        assert register(server, "0123abcd", str(root / "0123abcd" / "model")).status_code == 200
        assert invoke(server, "0123abcd", [1]).json() == {"model": "packed", "data": [1]}
        assert len(list(scratch.glob("sagemaker-model-0123abcd-*"))) == 1
        assert server.client.delete("/models/0123abcd").status_code == 200
        assert list(scratch.glob("sagemaker-model-*")) == []


# -- listing -----------------------------------------------------------------------------------


def test_pagination_follows_mms(tmp_path):
    root = tmp_path / "models"
    add_model(root, "m")
    with start_mme(root) as server:
        for name in ("e", "c", "a", "d", "b"):
            assert register(server, name, "m").status_code == 200

        def page(**query: Any) -> dict[str, Any]:
            response = server.client.get("/models", params=query)
            assert response.status_code == 200
            body = response.json()
            return {"token": body.get("nextPageToken"), "names": [m["modelName"] for m in body["models"]]}

        assert page() == {"token": None, "names": ["a", "b", "c", "d", "e"]}
        assert page(limit=2) == {"token": "2", "names": ["a", "b"]}
        assert page(limit=2, next_page_token=2) == {"token": "4", "names": ["c", "d"]}
        assert page(limit=2, next_page_token=4) == {"token": None, "names": ["e"]}
        assert page(limit=5) == {"token": "5", "names": ["a", "b", "c", "d", "e"]}  # offset + limit <= count
        assert page(limit=5, next_page_token=5) == {"token": None, "names": []}
        # MMS answers limit=0 with an empty page and a token that never advances; here it is 100.
        assert page(limit=0) == {"token": None, "names": ["a", "b", "c", "d", "e"]}
        assert page(limit=101)["names"] == page(limit=-1)["names"] == page(limit="x")["names"] == list("abcde")
        assert page(limit=1, next_page_token=-3) == {"token": "1", "names": ["a"]}
        assert page(limit=1, next_page_token="x") == {"token": "1", "names": ["a"]}
        assert page(next_page_token=9) == {"token": None, "names": []}
        assert server.client.get("/models/").json()["models"][0]["modelName"] == "a"  # trailing slash


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, content_type, status, message", [
    (b"{}", "application/json", 400, "Parameter url is required."),
    (b"", "", 400, "Parameter url is required."),
    (b'{"url": 5}', "application/json", 400, "Parameter url must be a string."),
    (b"{not json", "application/json; charset=utf-8", 400, "Invalid JSON body."),
    (b"[1]", "application/json", 400, "Invalid JSON body: expected an object."),
    (b'{"url": "m", "batch_size": "many"}', "application/json", 400,
     "Parameter batch_size must be an integer from 1 to 4096."),
    (b'{"url": "m", "initial_workers": 0}', "application/json", 400,
     "Parameter initial_workers must be an integer from 1 to 256."),
    (b'{"url": "m", "synchronous": "maybe"}', "application/json", 400, "Parameter synchronous must be true or false."),
    (b'{"url": "m", "runtime": "java"}', "application/json", 400, "Invalid RuntimeType value: java"),
    (b'{"url": "m", "handler": "/tmp/evil.py:handle"}', "application/json", 400,
     "Invalid handler: /tmp/evil.py:handle"),
    (b'{"url": "m", "handler": "../x.py"}', "application/json", 400, "Invalid handler: ../x.py"),
    (b'{"url": "m", "model_name": "a/b"}', "application/json", 400,
     "Invalid model name: 'a/b'. Use 1-256 letters, digits, '.', '_' or '-'."),
    (b'{"url": "nowhere", "model_name": "n"}', "application/json", 404, "Model not found in model store: nowhere"),
])
def test_register_refusals(shared, body, content_type, status, message):
    server, root = shared
    add_model(root, "m")
    response = server.client.post("/models", content=body, headers={"Content-Type": content_type})
    assert error(response)[0::2] == (status, message)


def test_query_form_refusals(shared):
    server, _ = shared
    response = server.client.post("/models", params={"url": "m", "max_batch_delay": "soon"})
    assert error(response) == (400, "BadRequestException",
                               "Parameter max_batch_delay must be a number from 0 to 600000.")
    response = server.client.post("/models", params={"model_name": "x" * 300, "url": "m"})
    assert error(response)[0] == 400


def test_duplicate_is_409_and_keeps_the_first(shared):
    server, root = shared
    add_model(root, "dup")
    assert register(server, "dup", "dup").status_code == 200
    assert error(register(server, "dup", "dup")) == (409, "ConflictStatusException", "Model dup is already registered.")
    assert invoke(server, "dup", [1]).json()["model"] == "dup"
    assert server.client.delete("/models/dup").status_code == 200


def test_handler_that_fails_to_load_is_500_and_frees_the_name(shared):
    server, root = shared
    add_model(root, "broken", FAILING)
    status, error_type, message = error(register(server, "broken", "broken"))
    assert (status, error_type) == (500, "InternalServerException")
    assert message.startswith("Failed to start workers")
    assert "broken" not in names(server)
    assert error(invoke(server, "broken"))[0] == 404


def test_model_larger_than_the_memory_limit_is_507(shared):
    server, root = shared
    add_model(root, "huge", **{"memory_mb": "1000"})
    status, error_type, message = error(register(server, "huge", "huge"))
    assert (status, error_type) == (507, "InternalServerException")
    # memory_mb is what one worker needs beyond an idle worker process (~30 MiB).
    assert message.startswith("Not enough memory to load model huge: it needs 1030.0 MiB")
    assert "huge" not in names(server)
    add_model(root, "fits", **{"memory_mb": "10"})
    assert register(server, "fits", "fits").status_code == 200
    assert server.client.delete("/models/fits").status_code == 200


@pytest.mark.parametrize("method, path, status, message", [
    ("GET", "/models/ghost", 404, "Model not found: ghost"),
    ("DELETE", "/models/ghost", 404, "Model not found: ghost"),
    ("POST", "/models/ghost/invoke", 404, "Model not found: ghost"),
    ("POST", "/invocations", 400, "Parameter model_name is required. Name the model with the "
                                  "X-Amzn-SageMaker-Target-Model header or the model_name query parameter."),
    ("PATCH", "/models", 405, "Requested method is not allowed, please refer to API document."),
    ("POST", "/models/ghost", 405, "Requested method is not allowed, please refer to API document."),
    ("GET", "/models/ghost/other", 404, "Requested resource is not found, please refer to API document."),
    ("PUT", "/models/ghost?min_worker=3&max_worker=2", 400, "max_worker cannot be less than min_worker."),
    ("PUT", "/models/ghost?min_worker=1", 404, "Model not found: ghost"),
])
def test_management_refusals(shared, method, path, status, message):
    server, _ = shared
    response = server.client.request(method, path, content=b"[1]", headers={"Content-Type": "application/json"})
    assert error(response)[0::2] == (status, message)


def test_invoke_header_names_an_unknown_model(shared):
    server, _ = shared
    assert error(invoke(server, "ghost")) == (404, "ModelNotFoundException", "Model not found: ghost")


def test_scaling(shared):
    server, root = shared
    add_model(root, "scaled")
    assert register(server, "scaled", "scaled").status_code == 200
    response = server.client.put("/models/scaled", params={"min_worker": 1, "synchronous": "true"})
    assert (response.status_code, response.json()) == (200, {"status": "Workers scaled"})
    response = server.client.put("/models/scaled", params={"min_worker": 1})
    assert (response.status_code, response.json()) == (202, {"status": "Processing worker updates..."})
    response = server.client.put("/models/scaled", params={"min_worker": 2, "synchronous": "true"})
    assert (response.status_code, response.json()) == (200, {"status": "Workers scaled"})
    workers = server.client.get("/models/scaled").json()["workers"]
    assert [w["status"] for w in workers] == ["READY", "READY"]
    assert len({w["pid"] for w in workers}) == 2
    assert invoke(server, "scaled").status_code == 200
    response = server.client.put("/models/scaled", params={"min_worker": 1, "max_worker": 1, "synchronous": "true"})
    assert (response.status_code, response.json()) == (200, {"status": "Workers scaled"})
    assert len(server.client.get("/models/scaled").json()["workers"]) == 1
    assert invoke(server, "scaled").status_code == 200
    assert server.client.delete("/models/scaled").status_code == 200


def test_asynchronous_registration_answers_202_then_loads(shared):
    import time

    server, root = shared
    add_model(root, "later")
    response = register(server, "later", "later", synchronous=False)
    assert (response.status_code, response.json()) == (202, {"status": "Processing worker updates..."})
    deadline = time.monotonic() + 30
    while invoke(server, "later", [1]).status_code != 200:
        assert time.monotonic() < deadline, server.log
        time.sleep(0.05)
    assert server.client.delete("/models/later").status_code == 200


def test_least_recently_used_model_is_evicted_when_enabled(tmp_path):
    root = tmp_path / "models"
    for name in ("one", "two", "three"):
        add_model(root, name, **{"memory_mb": "10"})  # 40 MiB with the worker process
    env = {"SAGEMAKER_MODEL_MEMORY_LIMIT_MB": "100", "SAGEMAKER_MME_LRU_EVICTION": "true"}
    with start_mme(root, env=env) as server:
        assert register(server, "one", "one").status_code == 200
        assert register(server, "two", "two").status_code == 200
        assert invoke(server, "one").status_code == 200  # "two" is now the least recently used
        assert register(server, "three", "three").status_code == 200
        assert names(server) == ["one", "three"]
        assert error(invoke(server, "two"))[0] == 404


def test_management_api_is_absent_in_single_model_mode(serve, model_dir):
    from tests.e2e.conftest import ECHO_MODEL

    server = serve("--model-dir", str(model_dir(ECHO_MODEL)))
    for method, path in (("GET", "/models"), ("POST", "/models"), ("GET", "/models/model"),
                         ("DELETE", "/models/model")):
        status, error_type, _ = error(server.client.request(method, path))
        assert (status, error_type) == (404, "ResourceNotFoundException")


def test_json_response_layout(shared):
    server, _ = shared
    response = server.client.get("/models", params={"limit": 1, "next_page_token": 10**6})
    assert response.headers["content-type"] == "application/json"
    assert response.content == (json.dumps({"models": []}, indent=2) + "\n").encode()
