"""Dynamic batching through the real server: batches form, responses pair with their requests,
items fail alone, and handlers that know nothing about batches keep working."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

BATCH_AWARE_MODEL = """
import json
import numpy as np

CALLS = []

def model_fn(model_dir, context):
    return {"batch_size": context.system_properties["batch_size"]}

def predict_batch_fn(inputs, model):
    CALLS.append(len(inputs))
    # One "model call" for the whole batch: stack, compute, split.
    stacked = np.vstack([np.atleast_2d(np.asarray(x, dtype=float)) for x in inputs])
    doubled = stacked * 2
    out, row = [], 0
    for x in inputs:
        rows = np.atleast_2d(np.asarray(x)).shape[0]
        out.append({"doubled": doubled[row:row + rows].tolist(), "batch": len(inputs),
                    "configured": model["batch_size"]})
        row += rows
    return out

def output_fn(prediction, accept):
    if accept == "text/csv":
        return "%d\\n" % prediction["batch"], "text/csv"
    return json.dumps(prediction), "application/json"
"""

PER_ITEM_MODEL = """
import json

def model_fn(model_dir):
    return None

def input_fn(data, content_type):
    return json.loads(data)

def predict_fn(data, model, context):
    return {"value": data["value"], "batch": len(context.request_processor)}

def output_fn(prediction, accept):
    return json.dumps(prediction)
"""

FUNCTION_HANDLER = """
import json

def handle(data, context):
    if data is None:
        return None
    return [json.dumps({"batch": len(data), "body": d["body"].decode(),
                        "id": context.get_request_header(i, "X-Id")}) for i, d in enumerate(data)]
"""


async def _fire(url: str, requests: list[tuple[bytes, dict[str, str]]], connections: int = 64) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:
        return await asyncio.gather(*(client.post("/invocations", content=body, headers=headers)
                                      for body, headers in requests))


def test_function_handler_sees_batches_and_pairs_responses(serve, model_dir):
    path = model_dir("", **{"code/batchy.py": FUNCTION_HANDLER})
    server = serve("--model-dir", str(path), "--handler", "batchy", "--batch-size", "8", "--max-batch-delay", "50")
    requests = [(f"body-{i}".encode(), {"X-Id": str(i)}) for i in range(200)]
    responses = asyncio.run(_fire(server.url, requests))
    sizes = []
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["body"] == f"body-{i}" and payload["id"] == str(i)
        sizes.append(payload["batch"])
    assert max(sizes) > 1
    assert max(sizes) <= 8


def test_single_request_completes_within_the_delay_bound(serve, model_dir):
    path = model_dir("", **{"code/batchy.py": FUNCTION_HANDLER})
    server = serve("--model-dir", str(path), "--handler", "batchy", "--batch-size", "32",
                   "--max-batch-delay", "200")
    response = server.client.post("/invocations", content=b"alone", headers={"X-Id": "1"})
    assert response.status_code == 200
    assert response.json() == {"batch": 1, "body": "alone", "id": "1"}


def test_batch_aware_handler_500_mixed_requests_keep_order_and_pairing(serve, model_dir):
    server = serve("--model-dir", str(model_dir(BATCH_AWARE_MODEL)), "--batch-size", "16",
                   "--max-batch-delay", "20", env={"SAGEMAKER_TS_BATCH_SIZE": "4"})
    requests = []
    for i in range(500):
        if i % 3 == 0:
            requests.append((f"{i},{i + 1}\n".encode(), {"Content-Type": "text/csv", "Accept": "application/json"}))
        elif i % 3 == 1:
            requests.append((json.dumps([[i, -i]]).encode(), {"Content-Type": "application/json; charset=utf-8",
                                                              "Accept": "application/json"}))
        else:
            requests.append((json.dumps([[i, i]]).encode(), {"Content-Type": "application/json", "Accept": "text/csv"}))
    responses = asyncio.run(_fire(server.url, requests, connections=100))
    batches = []
    for i, response in enumerate(responses):
        assert response.status_code == 200, (i, response.text)
        if i % 3 == 2:
            assert response.headers["content-type"] == "text/csv"
            batches.append(int(response.text))
            continue
        assert response.headers["content-type"] == "application/json"
        payload = response.json()
        expected = [[2 * i, 2 * (i + 1)]] if i % 3 == 0 else [[2 * i, -2 * i]]
        assert payload["doubled"] == expected
        assert payload["configured"] == 16  # the CLI flag wins over SAGEMAKER_TS_BATCH_SIZE
        batches.append(payload["batch"])
    assert max(batches) > 1


def test_failing_item_fails_alone(serve, model_dir):
    server = serve("--model-dir", str(model_dir(BATCH_AWARE_MODEL)), "--batch-size", "8", "--max-batch-delay", "200")
    good = [(json.dumps([[i, i]]).encode(), {"Content-Type": "application/json"}) for i in range(6)]
    bad = [(b"{not json", {"Content-Type": "application/json"}), (b"\x00\x01", {"Content-Type": "application/x-foo"})]
    responses = asyncio.run(_fire(server.url, good[:3] + bad + good[3:]))
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 200, 400, 415, 200, 200, 200]
    assert responses[3].json()["code"] == 400
    assert responses[4].json()["code"] == 415
    assert responses[0].json()["doubled"] == [[0, 0]]


def test_handlers_without_batch_function_still_run_per_item(serve, model_dir):
    server = serve("--model-dir", str(model_dir(PER_ITEM_MODEL)), "--batch-size", "8", "--max-batch-delay", "50")
    requests = [(json.dumps({"value": i}).encode(), {"Content-Type": "application/json"}) for i in range(64)]
    responses = asyncio.run(_fire(server.url, requests))
    assert [r.json()["value"] for r in responses] == list(range(64))
    assert max(r.json()["batch"] for r in responses) > 1


@pytest.mark.parametrize("env", [{"SAGEMAKER_TS_BATCH_SIZE": "6", "SAGEMAKER_TS_MAX_BATCH_DELAY": "30"}])
def test_batch_settings_from_the_environment(serve, model_dir, env):
    server = serve("--model-dir", str(model_dir(BATCH_AWARE_MODEL)), env=env)
    response = server.client.post("/invocations", content=b"[[1, 2]]", headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["configured"] == 6
    params = server.client.get("/execution-parameters").json()
    assert params["BatchStrategy"] == "MULTI_RECORD"
