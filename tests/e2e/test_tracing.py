"""OpenTelemetry tracing end to end, with the SDK's in-memory exporter.

The exporter is installed the way ``opentelemetry-instrument`` installs a provider: by a
``sitecustomize`` module on ``PYTHONPATH``, in the server and in every worker (they inherit the
environment). Each process dumps its finished spans to a file at exit; the test reads them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.serverproc import ServerProcess, write_model

pytest.importorskip("opentelemetry.sdk.trace")

SITECUSTOMIZE = """
import atexit, json, os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)


@atexit.register
def _dump():
    spans = [{"name": s.name, "kind": s.kind.name, "trace_id": format(s.context.trace_id, "032x"),
              "span_id": format(s.context.span_id, "016x"),
              "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
              "links": [format(link.context.span_id, "016x") for link in s.links],
              "status": s.status.status_code.name, "attributes": dict(s.attributes or {})}
             for s in _exporter.get_finished_spans()]
    path = os.path.join(os.environ["TEST_SPANS_DIR"], f"{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(spans, f)
"""

HANDLER = """
import json
from opentelemetry import trace

tracer = trace.get_tracer("user.handler")

def handle(data, context):
    if data is None:
        return None
    with tracer.start_as_current_span("my-work"):
        pass
    if data[0]["body"] == b"fail":
        raise RuntimeError("boom")
    return [json.dumps({"traceparent": context.get_request_header(i, "traceparent")}) for i in range(len(data))]
"""

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def spans(directory: Path) -> list[dict]:
    return [span for path in directory.glob("*.json") for span in json.loads(path.read_text())]


@pytest.fixture
def traced(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    out = tmp_path / "spans"
    out.mkdir()
    model_dir = write_model(tmp_path / "model", "", **{"handler.py": HANDLER})
    env = {"PYTHONPATH": str(site), "TEST_SPANS_DIR": str(out)}
    return model_dir, env, out


def test_a_request_span_continues_the_client_trace_into_the_handler(traced) -> None:
    model_dir, env, out = traced
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"],
                       env=env) as server:
        server.wait_ready()
        traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
        response = server.client.post("/invocations", content=b"x", headers={"traceparent": traceparent})
        assert response.status_code == 200
        seen_by_handler = response.json()["traceparent"]
        assert server.client.post("/invocations", content=b"fail").status_code == 503
        assert server.client.post("/invocations", content=b"y").status_code == 200  # a new trace
        assert server.stop() == 0
    recorded = spans(out)
    server_spans = [s for s in recorded if s["kind"] == "SERVER"]
    assert len(server_spans) == 3
    first = next(s for s in server_spans if s["trace_id"] == TRACE_ID)
    assert first["parent_id"] == CLIENT_SPAN
    assert first["name"] == "POST /invocations"
    assert first["attributes"]["http.response.status_code"] == 200
    assert first["attributes"]["sagemaker.model"] == "model"
    # The handler saw our span's traceparent, not the client's.
    assert seen_by_handler == f"00-{TRACE_ID}-{first['span_id']}-01"
    handle = next(s for s in recorded if s["name"] == "handle" and s["trace_id"] == TRACE_ID)
    assert handle["parent_id"] == first["span_id"]
    mine = next(s for s in recorded if s["name"] == "my-work" and s["trace_id"] == TRACE_ID)
    assert mine["parent_id"] == handle["span_id"]
    failed = next(s for s in server_spans if s["attributes"]["http.response.status_code"] == 503)
    assert failed["status"] == "ERROR" and failed["trace_id"] != TRACE_ID
    failed_handle = next(s for s in recorded if s["name"] == "handle" and s["trace_id"] == failed["trace_id"])
    assert failed_handle["status"] == "ERROR"
    assert len({s["trace_id"] for s in server_spans}) == 3


def test_batches_link_the_other_requests(traced) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    model_dir, env, out = traced
    args = ["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle", "--batch-size", "4",
            "--max-batch-delay", "2000"]
    with ServerProcess(args, env=env) as server:
        server.wait_ready()
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: httpx.post(f"{server.url}/invocations", content=b"x",
                                                          timeout=30).status_code, range(4)))
        assert statuses == [200] * 4
        server.stop()
    recorded = spans(out)
    handles = [s for s in recorded if s["name"] == "handle"]
    assert len(handles) == 1 and handles[0]["attributes"]["sagemaker.batch_size"] == 4
    server_ids = {s["span_id"] for s in recorded if s["kind"] == "SERVER"}
    assert {handles[0]["parent_id"], *handles[0]["links"]} == server_ids


def test_nothing_is_imported_when_tracing_is_not_configured(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import sys
        from sagemaker_inference.server.config import ServerConfig
        from sagemaker_inference.server.observability import tracing
        from sagemaker_inference.server.workers import process
        config = ServerConfig.from_env({})
        assert not tracing.tracing_enabled(config.tracing)
        assert process._tracer("m") is None
        assert not [m for m in sys.modules if m.startswith("opentelemetry")], "opentelemetry imported"
        """)
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_configured_through_otel_variables_alone(tmp_path: Path) -> None:
    """No provider installed beforehand: the server builds the SDK's from OTEL_* (here the SDK's
    console exporter, which prints each span as JSON)."""
    model_dir = write_model(tmp_path / "model", "", **{"handler.py": HANDLER})
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "my-endpoint"}
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"],
                       env=env) as server:
        server.wait_ready()
        response = server.client.post("/invocations", content=b"x",
                                      headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"})
        assert response.status_code == 200
        assert server.stop() == 0
        log = server.log
    assert '"name": "POST /invocations"' in log and '"name": "handle"' in log and '"name": "my-work"' in log
    assert f'"trace_id": "0x{TRACE_ID}"' in log
    assert '"service.name": "my-endpoint"' in log
