"""CloudWatch EMF lines from the real server: parsed, checked against the schema CloudWatch
publishes (tests/data/emf-schema.json) and against the rules the schema cannot express (every
referenced metric and dimension is a root member of the right type), and summed against the
traffic sent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema

from tests.e2e.serverproc import ServerProcess, write_model
from tests.e2e.test_metrics import HANDLER

SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "emf-schema.json").read_text())
# The published schema uses draft-07 conventions (fragment $ids) without naming its draft.
jsonschema.Draft7Validator.check_schema(SCHEMA)
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
DEADLINE = 30.0


def emf_documents(log: str) -> list[dict]:
    documents = []
    for line in log.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            check_document(document)
            documents.append(document)
    return documents


def check_document(document: dict) -> None:
    VALIDATOR.validate(document)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for dimension in dimension_set:
                assert isinstance(document[dimension], str), dimension
        names = [metric["Name"] for metric in directive["Metrics"]]
        assert len(names) == len(set(names)) <= 100
        for name in names:
            value = document[name]
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (name, value)


def wait_for_emf(server: ServerProcess, predicate) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if predicate(emf_documents(server.log)):
            return
        time.sleep(0.1)


def total(documents: list[dict], name: str) -> float:
    return sum(d.get(name, 0) for d in documents)


def test_emf_lines_follow_the_schema_and_add_up(tmp_path: Path) -> None:
    model_dir = write_model(tmp_path / "model", "", **{"handler.py": HANDLER})
    env = {"SAGEMAKER_METRICS_EMF": "true", "SAGEMAKER_METRICS_EMF_INTERVAL": "0.3",
           "SAGEMAKER_METRICS_EMF_NAMESPACE": "MyTeam/Inference"}
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"],
                       env=env) as server:
        server.wait_ready()
        for body, status in ((b"ok", 200),) * 5 + ((b"client-error", 400),) * 2 + ((b"server-error", 503),):
            assert server.client.post("/invocations", content=body).status_code == status
        # A worker's own figures travel when asked for (each line asks): wait for them before it dies.
        wait_for_emf(server, lambda docs: total(docs, "Invocations") == 8 and any("PredictionTime" in d for d in docs))
        assert server.client.post("/invocations", content=b"die").status_code == 500
        wait_for_emf(server, lambda docs: total(docs, "Invocations") == 9 and total(docs, "WorkerRestarts") == 1)
        server.stop()
        documents = emf_documents(server.log)  # the last line, written at shutdown, is checked too
    assert documents, server.log
    assert {d["ModelName"] for d in documents} == {"model"}
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents} == {"MyTeam/Inference"}
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ModelName"]] for d in documents)
    assert (total(documents, "Invocations"), total(documents, "Invocation2XX"),
            total(documents, "Invocation4XXErrors"), total(documents, "Invocation5XXErrors")) == (9, 5, 2, 2)
    assert total(documents, "WorkerRestarts") == 1
    busy = [d for d in documents if d["Invocations"]]
    assert all(0 < d["RequestLatencyP50"] <= d["RequestLatencyP90"] <= d["RequestLatencyP99"] for d in busy)
    assert all("RequestLatencyP50" not in d for d in documents if not d["Invocations"])
    assert any(d.get("PredictionTime") == 12.5 for d in documents)  # the handler's own metric
    units = {m["Name"]: m["Unit"] for d in documents for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["RequestLatencyP99"] == "Milliseconds" and units["Invocations"] == "Count"
    assert units["PredictionTime"] == "Milliseconds" and units["WorkerMemory"] == "Bytes"


def test_emf_off_by_default(tmp_path: Path) -> None:
    model_dir = write_model(tmp_path / "model", "", **{"handler.py": HANDLER})
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"],
                       env={"SAGEMAKER_METRICS_EMF_INTERVAL": "0.1"}) as server:
        server.wait_ready()
        assert server.client.post("/invocations", content=b"ok").status_code == 200
        server.stop()
        assert '"_aws"' not in server.log
