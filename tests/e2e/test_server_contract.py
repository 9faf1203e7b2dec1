"""The MMS service contract at the HTTP edge (mms-service-contract.md §4.3): what a handler's
return value or exception becomes. A function-form handler service picks its behaviour by body."""

from __future__ import annotations

import json

import pytest

from tests.e2e.serverproc import ServerProcess, write_model

CONTRACT_SERVICE = """
import json
from sagemaker_inference.context import PredictionException

def handle(data, context):
    if data is None:
        return None
    what = bytes(data[0]["body"]).decode()
    if what == "prediction-exception":
        raise PredictionException("teapot says no", 418)
    if what == "memory-error":
        raise MemoryError()
    if what == "generic-exception":
        raise RuntimeError("internal detail that must not leak")
    if what == "tuple":
        return ("a",)
    if what == "none":
        return None
    if what == "too-many":
        return ["a", "b"]
    if what == "unserializable":
        return [object()]
    if what == "dict":
        return [{"a": [1, 2]}]
    if what == "str":
        return ["h\\u00e9llo"]
    if what == "null-item":
        return [None]
    if what == "status-418":
        context.set_response_status(418, "I'm a teapot")
        return ["short and stout"]
    if what == "header-crlf":
        context.set_response_header(0, "X-Evil", "a\\r\\nInjected: yes")
        return ["ok"]
    if what == "request-id":
        return [context.get_request_id(0)]
    return [bytes(data[0]["body"])]
"""


@pytest.fixture(scope="module")
def contract(tmp_path_factory):
    directory = write_model(tmp_path_factory.mktemp("contract") / "model", "",
                            **{"code/contract_service.py": CONTRACT_SERVICE})
    with ServerProcess(["--model-dir", str(directory), "--handler", "contract_service", "--workers", "1"]) as server:
        yield server.wait_ready()


def call(server: ServerProcess, what: str):
    return server.client.post("/invocations", content=what.encode())


@pytest.mark.parametrize(("what", "status", "message"), [
    ("prediction-exception", 418, "teapot says no"),
    ("memory-error", 507, "Out of resources"),
    ("generic-exception", 503, "Prediction failed"),
    ("tuple", 503, "Invalid model predict output"),
    ("none", 503, "Invalid model predict output"),
    ("too-many", 503, "number of batch response mismatched"),
    ("unserializable", 503, "Unsupported model output data type."),
])
def test_batch_failures_become_json_errors(contract, what, status, message):
    response = call(contract, what)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": status, "type": "InternalServerException", "message": message}
    # The worker survives every one of them.
    assert call(contract, "echo-after").content == b"echo-after"


@pytest.mark.parametrize(("what", "body"), [
    ("dict", json.dumps({"a": [1, 2]}, indent=2).encode()),
    ("str", "h\u00e9llo".encode()),
    ("null-item", b"null"),
    ("binary\x00\xff", "binary\x00\xff".encode()),
])
def test_result_items_are_encoded_as_mms_does(contract, what, body):
    response = call(contract, what)
    assert response.status_code == 200
    assert response.content == body


def test_handler_chosen_error_status_keeps_the_handler_body(contract):
    response = call(contract, "status-418")
    assert response.status_code == 418
    assert response.reason_phrase == "I'm a teapot"
    assert response.content == b"short and stout"


def test_header_values_cannot_inject_headers(contract):
    response = call(contract, "header-crlf")
    assert response.status_code == 200
    assert "injected" not in response.headers
    assert response.content == b"ok"


def test_request_id_seen_by_the_handler_is_the_response_header(contract):
    response = call(contract, "request-id")
    assert response.text == response.headers["x-request-id"]


def test_empty_body_reaches_the_handler(contract):
    response = contract.client.post("/invocations", content=b"")
    assert response.status_code == 200
    assert response.content == b""
