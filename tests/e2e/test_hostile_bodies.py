"""Hostile and malformed bodies through the real server: the request's fault is a 4xx naming it,
the worker's memory stays proportional to the body, and the model keeps serving.

Memory is read from the worker's ``/proc/<pid>/status`` (``VmHWM``: its peak RSS) after each
hostile request, so a request that inflated anything shows even if it was freed again.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import scipy.sparse

from tests.e2e.serverproc import ServerProcess, write_model

ECHO_MODEL = """
def model_fn(model_dir):
    return None

def predict_fn(data, model):
    return data
"""

# The most common input_fn in the wild parses the body itself.
JSON_INPUT_FN = """
import json

def model_fn(model_dir):
    return None

def input_fn(request_body, content_type):
    return json.loads(request_body)

def predict_fn(data, model):
    if data == "predict":
        raise ValueError("predict_fn failed")
    return data

def output_fn(prediction, accept):
    if prediction == "output":
        raise ValueError("output_fn failed")
    return json.dumps(prediction)
"""


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    directory = write_model(tmp_path_factory.mktemp("echo") / "model", ECHO_MODEL)
    with ServerProcess(["--model-dir", str(directory), "--workers", "1"]) as server:
        yield server.wait_ready()


def post(server: ServerProcess, body: bytes, content_type: str, accept: str = "application/json"):
    return server.client.post("/invocations", content=body, headers={"Content-Type": content_type, "Accept": accept})


def test_bombs_are_refused_without_inflating_the_worker(echo):
    [worker] = echo.worker_pids()
    assert post(echo, b"[1, 2]", "application/json").json() == [1, 2]
    before = peak_rss_mib(worker)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.npy", npy(np.zeros(60_000_000)))  # 480 MB inflated, ~470 KB on the wire
        archive.writestr("format.npy", npy(np.array(b"csr")))
    strings = json.dumps(["a" * 20_000] + [""] * 50_000).encode()  # 250 KB -> a 4 GB <U20000 array
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<U0", "fortran_order": False, "shape": (10**15,)})
    for body, content_type, expected in [(zipped.getvalue(), "application/x-npz", "inflates to"),
                                         (strings, "application/json", "JSON string array too large"),
                                         (header.getvalue(), "application/x-npy", "<U0")]:
        response = post(echo, body, content_type)
        assert response.status_code == 400, response.text
        assert expected in response.json()["message"]
    assert peak_rss_mib(worker) - before < 50
    assert echo.worker_pids() == [worker]
    assert post(echo, b"[3]", "application/json").json() == [3]


@pytest.mark.parametrize(("array", "dtype"), [(np.array([1 + 2j]), "<c16"), (np.array([b"ab"]), "|S2"),
                                              (np.array(["2020-01-01"], dtype="M8[D]"), "<M8[D]"),
                                              (np.zeros(2, dtype="V3"), "|V3")])
def test_exotic_npy_dtypes_are_400_naming_the_dtype(echo, array, dtype):
    response = post(echo, npy(array), "application/x-npy")
    assert response.status_code == 400
    assert dtype in response.json()["message"]


def test_sparse_matrix_answered_as_json_csv_and_npy(echo):
    dense = np.array([[0.0, 1.5], [2.0, 0.0]])
    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix(dense))
    body = buffer.getvalue()
    assert post(echo, body, "application/x-npz").json() == dense.tolist()
    assert post(echo, body, "application/x-npz", "text/csv").text == "0.0,1.5\n2.0,0.0\n"
    answered = post(echo, body, "application/x-npz", "application/x-npy")
    np.testing.assert_array_equal(np.load(io.BytesIO(answered.content)), dense)


def test_unknown_charset_codec_is_415(echo):
    response = post(echo, b"[1]", "application/json; charset=undefined")
    assert response.status_code == 415


def test_value_error_from_a_user_input_fn_is_400_others_stay_500(tmp_path):
    directory = write_model(tmp_path / "model", JSON_INPUT_FN)
    with ServerProcess(["--model-dir", str(directory), "--workers", "1"]) as server:
        server.wait_ready()
        bad_json = post(server, b"{not json", "application/json")
        assert bad_json.status_code == 400
        assert "JSONDecodeError" in bad_json.json()["message"]
        bad_utf8 = post(server, b"\xc3\x28\x80\x80", "application/octet-stream")
        assert bad_utf8.status_code == 400
        assert "UnicodeDecodeError" in bad_utf8.json()["message"]
        assert post(server, b'"predict"', "application/json").status_code == 500
        assert post(server, b'"output"', "application/json").status_code == 500
        assert post(server, b'{"ok": 1}', "application/json").json() == {"ok": 1}
