"""Payloads through the real server and the default handler service: round trips, headers that
reach the handler, what the handler sets coming back, and the status each fault deserves."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.e2e.serverproc import ServerProcess, write_model

# model_fn/predict_fn only: input_fn and output_fn are the toolkit's defaults (decoder/encoder).
DOUBLING_MODEL = """
import numpy as np

def model_fn(model_dir):
    return 2

def predict_fn(data, model):
    data = np.asarray(data)
    if data.size and data.flat[0] == 666:
        raise ValueError("user code failed on 666")
    return data * model
"""

# transform_fn with the context: what SageMaker users do to read CustomAttributes.
HEADERS_MODEL = """
import json

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept, context):
    return json.dumps({
        "custom_attributes": context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes"),
        "headers": context.request_processor[0].get_request_properties(),
        "request_id": context.get_request_id(0),
        "content_type": content_type,
        "accept": accept,
        "data": data,
    }), "application/json"
"""

# A custom handler service in function form (given with --handler): sets status, headers, type.
CUSTOM_SERVICE = """
import json

def handle(data, context):
    if data is None:  # initialization call
        return None
    item = data[0]
    context.set_response_status(201, "Created", 0)
    context.set_response_header(0, "X-Model-Version", "7")
    context.set_response_content_type(0, "text/plain")
    headers = context.request_processor[0].get_request_properties()
    return [json.dumps({"keys": sorted(item), "body": bytes(item["body"]).decode(),
                        "query": {k: v for k, v in item.items() if k != "body"},
                        "custom": headers.get("X-Amzn-SageMaker-Custom-Attributes")})]
"""


@pytest.fixture(scope="module")
def doubling(tmp_path_factory):
    """One server for the tests that only send requests to it (each server start costs ~0.5 s)."""
    directory = write_model(tmp_path_factory.mktemp("doubling") / "model", DOUBLING_MODEL)
    with ServerProcess(["--model-dir", str(directory), "--workers", "1"]) as server:
        yield server.wait_ready()


def test_json_round_trip(doubling):
    response = doubling.client.post("/invocations", content=b"[[1, 2], [3, 4]]",
                                    headers={"Content-Type": "application/json", "Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [[2, 4], [6, 8]]


def test_json_with_charset_parameter(doubling):
    response = doubling.client.post("/invocations", content=b"[1.5]",
                                    headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200
    assert response.json() == [3.0]


def test_csv_round_trip(doubling):
    response = doubling.client.post("/invocations", content=b"1,2\n3,4\n",
                                    headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv"
    rows = [[float(v) for v in line.split(",")] for line in response.text.strip().splitlines()]
    assert rows == [[2, 4], [6, 8]]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_npy_round_trip(doubling):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    response = doubling.client.post("/invocations", content=_npy(array),
                                    headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-npy"
    result = np.load(io.BytesIO(response.content), allow_pickle=False)
    np.testing.assert_array_equal(result, array * 2)


def test_large_npy_body(doubling):
    array = np.random.default_rng(0).random((800, 800))  # 5.1 MB, under the 6,553,500-byte default limit
    body = _npy(array)
    assert 5_000_000 < len(body) < 6_553_500
    response = doubling.client.post("/invocations", content=body,
                                    headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
    assert response.status_code == 200
    np.testing.assert_array_equal(np.load(io.BytesIO(response.content), allow_pickle=False), array * 2)


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_default_accept_is_json(doubling, accept):
    headers = {"Content-Type": "text/csv"}
    if accept:
        headers["Accept"] = accept
    response = doubling.client.post("/invocations", content=b"1,2", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [2, 4] or response.json() == [[2, 4]]


def test_default_accept_follows_the_environment(serve, model_dir):
    server = serve("--model-dir", str(model_dir(DOUBLING_MODEL)),
                   env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    response = server.client.post("/invocations", content=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv"


def test_accept_list_with_q_values(doubling):
    response = doubling.client.post("/invocations", content=b"[1]", headers={
        "Content-Type": "application/json", "Accept": "application/xml;q=0.9, text/csv;q=0.8, */*;q=0.1"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv"


def _assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text
    return body


def test_unknown_content_type_is_415(doubling):
    response = doubling.client.post("/invocations", content=b"x", headers={"Content-Type": "application/unknown"})
    _assert_json_error(response, 415)


def test_unsupported_accept_is_406(doubling):
    response = doubling.client.post("/invocations", content=b"[1]",
                                    headers={"Content-Type": "application/json", "Accept": "application/unknown"})
    _assert_json_error(response, 406)


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b"[1, 2"),
    ("text/csv", b"1,2\n3\n"),  # ragged rows
    ("application/x-npy", b"\x93NUMPY truncated"),
])
def test_undecodable_body_is_400(doubling, content_type, body):
    response = doubling.client.post("/invocations", content=body, headers={"Content-Type": content_type})
    _assert_json_error(response, 400)


def test_pickled_npy_is_refused(doubling):
    body = io.BytesIO()
    np.save(body, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    response = doubling.client.post("/invocations", content=body.getvalue(),
                                    headers={"Content-Type": "application/x-npy"})
    _assert_json_error(response, 400)


def test_user_exception_is_500_with_a_short_json_message(doubling):
    response = doubling.client.post("/invocations", content=b"[666]", headers={"Content-Type": "application/json"})
    body = _assert_json_error(response, 500)
    assert "user code failed on 666" in body["message"]
    assert len(response.content) < 1000
    # The worker survives a user exception.
    assert doubling.client.post("/invocations", json=[1]).json() == [2]


def test_custom_attributes_and_headers_reach_the_handler(serve, model_dir):
    server = serve("--model-dir", str(model_dir(HEADERS_MODEL)))
    response = server.client.post("/invocations", content=b'{"x": 1}', headers={
        "Content-Type": "application/json", "Accept": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": "trace_id=abc; debug=true",
        "X-Amzn-SageMaker-Target-Model": "ignored-in-single-model",
        "X-Custom-Thing": "42",
    })
    assert response.status_code == 200
    seen = response.json()
    assert seen["custom_attributes"] == "trace_id=abc; debug=true"
    headers = seen["headers"]
    # Header names keep the case the client sent (mms-service-contract.md §3.1).
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace_id=abc; debug=true"
    assert headers["X-Amzn-SageMaker-Target-Model"] == "ignored-in-single-model"
    assert headers["X-Custom-Thing"] == "42"
    assert headers["Content-Type"] == "application/json"
    assert headers["body"] == {"content-type": "application/json"}
    assert seen["content_type"] == "application/json"
    assert seen["accept"] == "application/json"
    assert seen["data"] == '{"x": 1}'
    # The request id the handler sees is the x-request-id of the response.
    assert seen["request_id"] == response.headers["x-request-id"]


def test_handler_sets_status_headers_and_content_type(serve, model_dir):
    directory = model_dir("", **{"code/custom_service.py": CUSTOM_SERVICE})
    server = serve("--model-dir", str(directory), "--handler", "custom_service:handle")
    response = server.client.post("/invocations?model_name=model&extra=1", content=b"hello",
                                  headers={"Content-Type": "application/octet-stream",
                                           "X-Amzn-SageMaker-Custom-Attributes": "k=v"})
    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.headers["X-Model-Version"] == "7"
    assert response.headers["content-type"] == "text/plain"
    seen = json.loads(response.text)
    assert seen["body"] == "hello"
    assert seen["query"] == {"model_name": "model", "extra": "1"}
    assert seen["custom"] == "k=v"


def test_handler_given_as_a_file_path(serve, model_dir, tmp_path):
    service = tmp_path / "services" / "my_service.py"
    service.parent.mkdir()
    service.write_text(CUSTOM_SERVICE)
    server = serve("--model-dir", str(model_dir("")), "--handler", f"{service}:handle")
    response = server.client.post("/invocations", content=b"abc")
    assert response.status_code == 201
    assert json.loads(response.text)["body"] == "abc"


def test_handler_without_content_type_sends_none(serve, model_dir):
    # MMS sends no Content-Type when the handler sets none (mms-service-contract.md §4.3).
    directory = model_dir("", **{"code/bare.py": "def handle(data, context):\n    return data and [b'raw']\n"})
    server = serve("--model-dir", str(directory), "--handler", "bare")
    response = server.client.post("/invocations", content=b"x")
    assert response.status_code == 200
    assert response.content == b"raw"
    assert "content-type" not in response.headers
