"""Prometheus ``/metrics`` against the real server after known traffic, read with
``prometheus_client``'s own parser: counts, histogram buckets, label sets, a worker death, a
multi-model load and unload. Also ``/livez`` and ``/readyz``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.serverproc import ServerProcess, write_model
from tests.e2e.test_mme import TARGET, add_model, register, start_mme

DEADLINE = 20.0

# A handler service: the body says what to do. It records MMS metrics the way MMS handlers do.
HANDLER = """
import json, os

def handle(data, context):
    if data is None:
        return None
    body = data[0]["body"]
    context.metrics.add_time("PredictionTime", 12.5)
    context.metrics.add_counter("Hits", 1)
    if body == b"client-error":
        context.set_response_status(400, "Bad Request")
        return [json.dumps({"error": "bad input"})]
    if body == b"server-error":
        raise RuntimeError("boom")
    if body == b"die":
        os._exit(3)
    return [json.dumps({"ok": True, "id": context.get_request_id(0)})]
"""


def scrape(server: ServerProcess) -> dict[str, object]:
    response = server.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(families: dict[str, object], family: str, sample: str | None = None) -> dict[tuple, float]:
    """``{tuple(sorted(labels.items())): value}`` for one sample name of a family."""
    name = sample or family
    return {tuple(sorted(s.labels.items())): s.value for s in families[family].samples if s.name == name}


def value(families: dict[str, object], family: str, sample: str | None = None, **labels: str) -> float | None:
    return samples(families, family, sample).get(tuple(sorted(labels.items())))


def wait_for_scrape(server: ServerProcess, predicate: Callable[[dict[str, object]], bool]) -> dict[str, object]:
    """Worker figures arrive with the workers' answers to a scrape: poll until they add up."""
    deadline = time.monotonic() + DEADLINE
    while True:
        families = scrape(server)
        if predicate(families) or time.monotonic() > deadline:
            return families
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    model_dir = write_model(tmp_path_factory.mktemp("metrics") / "model", "", **{"handler.py": HANDLER})
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"]) as proc:
        yield proc.wait_ready()


def test_counts_buckets_and_labels_after_known_traffic(server: ServerProcess) -> None:
    client = server.client
    for _ in range(5):
        assert client.post("/invocations", content=b"ok").status_code == 200
    for _ in range(2):
        assert client.post("/invocations", content=b"client-error").status_code == 400
    assert client.post("/invocations", content=b"server-error").status_code == 503
    assert client.post("/models/nope/invoke", content=b"ok").status_code == 404

    families = wait_for_scrape(server, lambda f: value(f, "sagemaker_inference_handler_duration_seconds",
                                                       "sagemaker_inference_handler_duration_seconds_count",
                                                       model="model") == 8)
    requests = samples(families, "sagemaker_inference_requests", "sagemaker_inference_requests_total")
    assert requests == {
        (("model", "model"), ("status", "200")): 5.0,
        (("model", "model"), ("status", "400")): 2.0,
        (("model", "model"), ("status", "503")): 1.0,
        (("model", ""), ("status", "404")): 1.0,  # an unknown model name never becomes a label
    }
    for name in ("request_duration_seconds", "queue_duration_seconds", "handler_duration_seconds"):
        family = f"sagemaker_inference_{name}"
        buckets = [s for s in families[family].samples if s.name == family + "_bucket"]
        assert {s.labels["model"] for s in buckets} == {"model"}
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), f"{family}: buckets must be cumulative"
        assert buckets[-1].labels["le"] == "+Inf" and counts[-1] == 8
        assert value(families, family, family + "_count", model="model") == 8
        assert value(families, family, family + "_sum", model="model") > 0
    # Each request is its own batch here: batch size 1, eight times.
    assert value(families, "sagemaker_inference_batch_size", "sagemaker_inference_batch_size_count",
                 model="model") == 8
    assert value(families, "sagemaker_inference_batch_size", "sagemaker_inference_batch_size_sum",
                 model="model") == 8
    assert value(families, "sagemaker_inference_batch_size", "sagemaker_inference_batch_size_bucket",
                 model="model", le="1.0") == 8
    assert samples(families, "sagemaker_inference_handler_metric") == {
        (("model", "model"), ("name", "Hits"), ("unit", "Count")): 8.0,
        (("model", "model"), ("name", "PredictionTime"), ("unit", "Milliseconds")): 12.5,
    }
    assert value(families, "sagemaker_inference_inflight_requests", model="model") == 0
    assert value(families, "sagemaker_inference_queue_depth", model="model") == 0
    assert value(families, "sagemaker_inference_models_loaded") == 1
    assert value(families, "sagemaker_inference_model_load_duration_seconds", model="model") > 0
    assert value(families, "sagemaker_inference_workers", model="model", state="READY") == 1
    assert value(families, "sagemaker_inference_memory_bytes", process="frontend", model="", worker="") > 1 << 20
    assert value(families, "sagemaker_inference_memory_bytes", process="worker", model="model", worker="0") > 1 << 20
    assert value(families, "sagemaker_inference_cpu_seconds", "sagemaker_inference_cpu_seconds_total",
                 process="worker", model="model", worker="0") > 0
    assert "process_resident_memory_bytes" in families  # the standard collector, for the frontend


def test_a_worker_death_is_a_500_and_a_restart(server: ServerProcess) -> None:
    before = scrape(server)
    deaths = value(before, "sagemaker_inference_requests", "sagemaker_inference_requests_total",
                   model="model", status="500") or 0
    restarts = value(before, "sagemaker_inference_worker_restarts", "sagemaker_inference_worker_restarts_total",
                     model="model")
    assert server.client.post("/invocations", content=b"die").status_code == 500
    server.wait_ready(DEADLINE)
    families = wait_for_scrape(server, lambda f: value(f, "sagemaker_inference_workers", model="model",
                                                       state="READY") == 1)
    assert value(families, "sagemaker_inference_requests", "sagemaker_inference_requests_total",
                 model="model", status="500") == deaths + 1
    assert value(families, "sagemaker_inference_worker_restarts", "sagemaker_inference_worker_restarts_total",
                 model="model") == restarts + 1
    assert server.client.post("/invocations", content=b"ok").status_code == 200


def test_openmetrics_when_the_scraper_asks_for_it(server: ServerProcess) -> None:
    response = server.client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_probes(server: ServerProcess) -> None:
    assert server.client.get("/livez").json() == {"status": "Alive"}
    readyz = server.client.get("/readyz")
    assert (readyz.status_code, readyz.json()) == (200, {"status": "Healthy"})


def test_livez_answers_during_a_long_model_load(tmp_path: Path) -> None:
    model_dir = write_model(tmp_path / "model", """
        import os, time
        def model_fn(model_dir):
            while not os.path.exists(os.path.join(model_dir, "go")):
                time.sleep(0.01)
            return "loaded"
        def transform_fn(model, data, content_type, accept):
            return model, "text/plain"
        """)
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1"]) as server:
        server.wait_listening()
        assert server.client.get("/livez").status_code == 200
        assert server.client.get("/readyz").status_code == 503
        (model_dir / "go").write_text("")
        server.wait_ready()
        assert server.client.get("/readyz").status_code == 200


def test_metrics_off(tmp_path: Path) -> None:
    model_dir = write_model(tmp_path / "model", "", **{"handler.py": HANDLER})
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"],
                       env={"SAGEMAKER_METRICS": "false"}) as server:
        server.wait_ready()
        assert server.client.post("/invocations", content=b"ok").status_code == 200
        response = server.client.get("/metrics")
        assert response.status_code == 404
        assert "SAGEMAKER_METRICS" in response.json()["message"]


def test_multi_model_series_follow_loads_and_unloads(tmp_path: Path) -> None:
    for name in ("a", "b"):
        add_model(tmp_path, name)
    with start_mme(tmp_path) as server:
        for name in ("a", "b"):
            assert register(server, name, str(tmp_path / name)).status_code == 200
            response = server.client.post("/invocations", headers={TARGET: name, "content-type": "application/json"},
                                          content=json.dumps([1]))
            assert response.status_code == 200, response.text
        families = scrape(server)
        assert value(families, "sagemaker_inference_models_loaded") == 2
        for name in ("a", "b"):
            assert value(families, "sagemaker_inference_requests", "sagemaker_inference_requests_total",
                         model=name, status="200") == 1
            assert value(families, "sagemaker_inference_model_load_duration_seconds", model=name) > 0
        assert server.client.delete("/models/a").status_code == 200
        families = scrape(server)
        assert value(families, "sagemaker_inference_models_loaded") == 1
        labelled = {s.labels.get("model") for f in families.values() for s in f.samples}
        assert "a" not in labelled and "b" in labelled


def test_separate_metrics_port(tmp_path: Path) -> None:
    from tests.e2e.serverproc import free_port

    model_dir = write_model(tmp_path / "model", "", **{"handler.py": HANDLER})
    port = free_port()
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1", "--handler", "handler.py:handle"],
                       env={"SAGEMAKER_METRICS_PORT": str(port),
                            "SAGEMAKER_SAFE_PORT_RANGE": f"{port - 1}-{port + 1}"}) as server:
        server.wait_ready()
        assert server.client.post("/invocations", content=b"ok").status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as metrics:
            families = {f.name: f for f in text_string_to_metric_families(metrics.get("/metrics").text)}
            assert value(families, "sagemaker_inference_requests", "sagemaker_inference_requests_total",
                         model="model", status="200") == 1
            assert metrics.get("/livez").status_code == 200
            assert metrics.get("/readyz").status_code == 200
            assert metrics.post("/invocations", content=b"ok").status_code == 404  # only observability here


def test_metrics_port_outside_the_safe_range_is_refused(tmp_path: Path) -> None:
    model_dir = write_model(tmp_path / "model", "", **{"handler.py": HANDLER})
    with ServerProcess(["--model-dir", str(model_dir), "--metrics-port", "9999"],
                       env={"SAGEMAKER_SAFE_PORT_RANGE": "20000-20010"}) as server:
        assert server.wait_exit() == 2
        assert "SAGEMAKER_SAFE_PORT_RANGE 20000-20010" in server.log


def test_a_scrape_is_never_queued_behind_inference(tmp_path: Path) -> None:
    """A worker stuck in a request does not hold the scrape: it shows the request in flight and the
    worker's figures from before (the worker answers for the next scrape)."""
    from concurrent.futures import ThreadPoolExecutor

    model_dir = write_model(tmp_path / "model", """
        import os, time
        def model_fn(model_dir):
            return model_dir
        def transform_fn(model, data, content_type, accept):
            open(os.path.join(model, "started"), "w").close()
            while not os.path.exists(os.path.join(model, "release")):
                time.sleep(0.01)
            return "done", "text/plain"
        """)
    with ServerProcess(["--model-dir", str(model_dir), "--workers", "1"]) as server, ThreadPoolExecutor(1) as pool:
        server.wait_ready()
        pending = pool.submit(lambda: httpx.post(f"{server.url}/invocations", content=b"x", timeout=60))
        deadline = time.monotonic() + DEADLINE
        while not (model_dir / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        families = scrape(server)
        assert value(families, "sagemaker_inference_inflight_requests", model="model") == 1
        assert value(families, "sagemaker_inference_queue_depth", model="model") == 0
        (model_dir / "release").write_text("")
        assert pending.result().status_code == 200
