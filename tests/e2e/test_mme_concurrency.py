"""Multi-model concurrency against the real server: loads and unloads never block other models or
``/ping``; one name loaded twice at once gives one 200 and one 409; load/invoke/unload churn
loses or hangs no request.

No timing is asserted. Ordering is forced with a gate: the gated model's ``model_fn`` waits until
the test creates a file, so "while it is loading" is a fact, not a race.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.e2e.test_mme import TARGET, add_model, error, invoke, names, register, start_mme

GATED = """
import json, os, time

def model_fn(model_dir):
    deadline = time.monotonic() + 60  # never hang a test run for good
    while not os.path.exists({gate!r}) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "gated"

def transform_fn(model, data, content_type, accept):
    return json.dumps({{"model": model}}), "application/json"
"""


def add_gated(root: Path, gate: Path) -> None:
    add_model(root, "gated", GATED.format(gate=str(gate)))


def wait_until_loading(server, name: str) -> None:
    """Until ``name`` is registered (its workers are starting); a readiness wait, not a sleep."""
    import time

    deadline = time.monotonic() + 30
    while name not in names(server):
        assert time.monotonic() < deadline, server.log
        time.sleep(0.01)


def test_a_slow_load_blocks_neither_ping_nor_other_models(tmp_path):
    root, gate = tmp_path / "models", tmp_path / "gate"
    add_model(root, "steady")
    add_gated(root, gate)
    with start_mme(root) as server, ThreadPoolExecutor(1) as pool:
        assert register(server, "steady", "steady").status_code == 200
        loading = pool.submit(register, server, "gated", "gated")
        wait_until_loading(server, "gated")
        for _ in range(20):
            assert server.client.get("/ping").status_code == 200
            assert invoke(server, "steady", [1]).status_code == 200
        assert server.client.get("/models/gated").json()["status"] == "LOADING"
        assert error(invoke(server, "gated"))[0] == 404  # not ready: a clean 404, not a hang
        assert not loading.done()
        gate.touch()
        assert loading.result(timeout=60).status_code == 200
        assert invoke(server, "gated").json() == {"model": "gated"}


def test_two_loads_of_one_name_give_one_200_and_one_409(tmp_path):
    root, gate = tmp_path / "models", tmp_path / "gate"
    add_gated(root, gate)
    with start_mme(root) as server, ThreadPoolExecutor(2) as pool:
        barrier = threading.Barrier(2)

        def load() -> int:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                barrier.wait()
                return client.post("/models", json={"model_name": "gated", "url": "gated"}).status_code

        first, second = pool.submit(load), pool.submit(load)
        wait_until_loading(server, "gated")
        gate.touch()
        assert sorted([first.result(timeout=60), second.result(timeout=60)]) == [200, 409]
        assert names(server) == ["gated"]


def test_load_invoke_unload_churn_loses_no_request(tmp_path):
    root = tmp_path / "models"
    add_model(root, "steady")
    add_model(root, "churn")
    with start_mme(root) as server:
        assert register(server, "steady", "steady").status_code == 200
        stop = threading.Event()
        seen: dict[str, Counter[int]] = {"steady": Counter(), "churn": Counter()}
        lock = threading.Lock()

        def hammer(name: str, limit: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for _ in range(limit):
                    if stop.is_set():
                        return
                    status = client.post("/invocations", json=[1], headers={TARGET: name}).status_code
                    with lock:
                        seen[name][status] += 1

        def churn() -> list[int]:
            statuses = []
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for _ in range(3):
                    statuses.append(client.post("/models", json={"model_name": "churn", "url": "churn"}).status_code)
                    statuses += [client.post("/invocations", json=[1], headers={TARGET: "churn"}).status_code
                                 for _ in range(20)]
                    statuses.append(client.delete("/models/churn").status_code)
            return statuses

        with ThreadPoolExecutor(6) as pool:
            # Bounded counts; the hammers stop early once the churn is over.
            hammers = [pool.submit(hammer, "steady", 300) for _ in range(3)]
            hammers += [pool.submit(hammer, "churn", 1000) for _ in range(2)]
            lifecycle = pool.submit(churn)
            statuses = lifecycle.result(timeout=120)
            stop.set()
            for future in hammers:
                future.result(timeout=120)  # raises if a request failed at the transport level (lost/hung)
        assert statuses == ([200] * 22) * 3
        assert set(seen["steady"]) == {200}, seen
        assert set(seen["churn"]) <= {200, 404}, seen
        assert seen["steady"][200] > 0 and seen["churn"][404] > 0
        assert names(server) == ["steady"]
        assert server.client.get("/ping").status_code == 200
