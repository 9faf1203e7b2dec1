"""JSON logs and request ids against the real server: every line the server writes parsed one by
one (frontend, workers, access log, the handler's own prints), and a client's
``X-Amzn-SageMaker-Inference-Id`` followed from the response to the handler to the log lines.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.e2e.serverproc import ServerProcess, write_model
from tests.e2e.test_mme import TARGET, add_model, register, start_mme

INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")
DEADLINE = 20.0

HANDLER = """
import json, logging, sys

log = logging.getLogger("my.handler")

def handle(data, context):
    if data is None:
        return None
    request_id = context.get_request_id(0)
    print("hello from the handler", request_id)
    print("a warning on stderr", file=sys.stderr)
    log.warning("handler log line")
    context.metrics.add_time("PredictionTime", 3)
    return [json.dumps({"request_id": request_id})]
"""


def json_lines(text: str) -> list[dict[str, object]]:
    """Every line of the log as a JSON object; fails on the first line that is not one."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"log line {number} is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= set(record), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), line
        records.append(record)
    return records


def wait_for_log(server: ServerProcess, predicate, what: str) -> str:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        log = server.log
        if predicate(log):
            return log
        time.sleep(0.05)
    raise TimeoutError(f"{what} not in the log within {DEADLINE} s:\n{server.log}")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model(tmp_path / "model", "", **{"handler.py": HANDLER})


@pytest.mark.parametrize("how", ["flag", "env"])
def test_every_line_is_json_and_carries_the_inference_id(model_dir: Path, how: str) -> None:
    args = ["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle", "--access-log"]
    env = {"SAGEMAKER_LOG_FORMAT": "json"} if how == "env" else {}
    with ServerProcess(args + (["--log-format", "json"] if how == "flag" else []), env=env) as server:
        server.wait_ready()
        response = server.client.post("/invocations", content=b"x", headers={INFERENCE_ID: "client-id-42"})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "client-id-42"
        assert response.json() == {"request_id": "client-id-42"}  # what the handler saw in its context
        log = wait_for_log(server, lambda text: text.count("client-id-42") >= 5, "the request's lines")
        server.stop()
        records = json_lines(server.log)
    mine = [r for r in records if r.get("request_id") == "client-id-42"]
    by_logger = {r["logger"]: r for r in mine}
    assert by_logger["user.stdout"]["message"] == "hello from the handler client-id-42"
    assert by_logger["user.stderr"]["message"] == "a warning on stderr"
    assert by_logger["my.handler"]["level"] == "WARNING"
    assert by_logger["sagemaker_inference.metrics"]["message"].startswith("[METRICS]PredictionTime.Milliseconds:3")
    access = by_logger["sagemaker_inference.access"]
    assert '"POST /invocations" 200' in access["message"]
    assert all(r["model"] == "model" for r in mine)
    assert any(r["logger"] == "sagemaker_inference.server" and "ready on" in r["message"] for r in records)
    assert "client-id-42" in log


@pytest.mark.parametrize("header", ["x" * 65, "caf\u00e9", "tab\there", ""])
def test_an_invalid_inference_id_is_replaced(model_dir: Path, header: str) -> None:
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"]) as server:
        server.wait_ready()
        response = server.client.post("/invocations", content=b"x",
                                      headers=[(INFERENCE_ID.encode(), header.encode())])
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        assert UUID.fullmatch(request_id), request_id
        assert response.json() == {"request_id": request_id}


def test_the_longest_valid_id_and_error_responses_keep_it(model_dir: Path) -> None:
    longest = "A-z 0~9" * 9 + "#"  # 64 printable characters, a space among them
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"]) as server:
        server.wait_ready()
        response = server.client.post("/invocations", content=b"x", headers={INFERENCE_ID: longest})
        assert response.headers["x-request-id"] == longest
        assert response.json() == {"request_id": longest}
        missing = server.client.post("/models/nope/invoke", content=b"x", headers={INFERENCE_ID: "lost-1"})
        assert (missing.status_code, missing.headers["x-request-id"]) == (404, "lost-1")


def test_text_logs_name_the_request_they_are_about(model_dir: Path) -> None:
    args = ["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle", "--access-log"]
    with ServerProcess(args) as server:
        server.wait_ready()
        server.client.post("/invocations", content=b"x", headers={INFERENCE_ID: "text-id-7"})
        log = wait_for_log(server, lambda text: '"POST /invocations" 200' in text, "the access line")
    access = next(line for line in log.splitlines() if '"POST /invocations" 200' in line)
    assert "sagemaker_inference.access (request text-id-7): " in access and access.endswith(" ms")
    assert "hello from the handler text-id-7" in log  # the handler's print, as it printed it
    handler_line = next(line for line in log.splitlines() if "handler log line" in line)
    assert "[WARNING] my.handler (request text-id-7): handler log line" in handler_line  # logged in the worker
    startup = next(line for line in log.splitlines() if "ready on" in line)
    assert "(request" not in startup  # a line about no request stays as it was
    assert not any(line.startswith("{") for line in log.splitlines())


def test_multi_model_load_and_unload_lines_carry_sagemaker_timings(tmp_path: Path) -> None:
    add_model(tmp_path, "a")
    with start_mme(tmp_path, env={"SAGEMAKER_LOG_FORMAT": "json"}) as server:
        assert register(server, "a", str(tmp_path / "a")).status_code == 200
        response = server.client.post("/invocations", headers={TARGET: "a", "content-type": "application/json"},
                                      content=b"[1]")
        assert response.status_code == 200
        assert server.client.delete("/models/a").status_code == 200
        wait_for_log(server, lambda text: "ModelUnloadingTime" in text, "the unload line")
        server.stop()
        records = json_lines(server.log)
    loaded = next(r for r in records if "ModelLoadingTime" in r)
    unloaded = next(r for r in records if "ModelUnloadingTime" in r)
    assert loaded["model"] == unloaded["model"] == "a"
    assert isinstance(loaded["ModelLoadingTime"], int) and loaded["ModelLoadingTime"] > 0
    assert isinstance(unloaded["ModelUnloadingTime"], int) and unloaded["ModelUnloadingTime"] >= 0
