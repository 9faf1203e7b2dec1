"""Scaling a model's workers while other things happen to it, against the real server: a
synchronous scale-up whose workers are closed before they load, and a scale-down then scale-up
inside a restart back-off."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from sagemaker_inference.server.workers.pool import restart_delay
from tests.e2e.test_mme import add_model, error, invoke, register, start_mme
from tests.e2e.test_server_faults import wait_for

DEADLINE = 30.0

# model_fn waits while the file "hold" exists, and refuses to load while "refuse" exists.
GATED = """
import json, pathlib, time

def model_fn(model_dir):
    directory = pathlib.Path(model_dir)
    while (directory / "hold").exists():
        time.sleep(0.02)
    if (directory / "refuse").exists():
        raise RuntimeError("refused")
    return "gated"

def transform_fn(model, data, content_type, accept):
    return json.dumps(model), "application/json"
"""


def _statuses(client: httpx.Client, name: str) -> list[str]:
    return [w["status"] for w in client.get(f"/models/{name}").json()["workers"]]


def _scale(client: httpx.Client, name: str, **query: object) -> httpx.Response:
    return client.put(f"/models/{name}", params={**query, "synchronous": "true"}, timeout=DEADLINE)


def _scale_with_own_client(url: str, name: str, workers: int) -> httpx.Response:
    with httpx.Client(base_url=url) as client:
        return _scale(client, name, min_worker=workers)


def _pending_scale_up(server, root: Path, name: str, workers: int = 3):
    """Register ``name``, then start a synchronous scale-up whose new workers cannot load yet."""
    directory = add_model(root, name, GATED)
    assert register(server, name, name).status_code == 200
    (directory / "hold").write_text("")
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(_scale_with_own_client, server.url, name, workers)
    wait_for(lambda: len(_statuses(server.client, name)) == workers, timeout=DEADLINE, what="scale-up started")
    return directory, pool, future


def test_a_synchronous_scale_up_is_answered_when_the_model_is_unregistered(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    server = start_mme(root)
    try:
        _, pool, future = _pending_scale_up(server, root, "m")
        assert server.client.delete("/models/m", timeout=DEADLINE).status_code == 200
        assert error(future.result(timeout=DEADLINE))[0] == 500
        pool.shutdown()
    finally:
        server.stop()


def test_a_scale_down_answers_a_pending_scale_up(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    server = start_mme(root)
    try:
        directory, pool, future = _pending_scale_up(server, root, "m")
        response = _scale(server.client, "m", min_worker=1, max_worker=1)
        assert (response.status_code, response.json()) == (200, {"status": "Workers scaled"})
        assert error(future.result(timeout=DEADLINE))[0] == 500
        pool.shutdown()
        (directory / "hold").unlink()
        assert _statuses(server.client, "m") == ["READY"]
        assert invoke(server, "m").status_code == 200
    finally:
        server.stop()


def test_scaling_down_and_up_inside_a_restart_back_off_orphans_no_worker(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    server = start_mme(root)
    try:
        directory = add_model(root, "m", GATED)
        assert register(server, "m", "m", initial_workers=2).status_code == 200
        assert _statuses(server.client, "m") == ["READY", "READY"]
        # Worker 1 dies and every restart fails to load, so the back-off grows past a second.
        (directory / "refuse").write_text("")
        victim = server.client.get("/models/m").json()["workers"][1]["pid"]
        os.kill(victim, signal.SIGKILL)
        failures = 5
        wait_for(lambda: f"({failures} consecutive failures)" in server.log, timeout=DEADLINE,
                 what="a long back-off")
        (directory / "refuse").unlink()
        assert _scale(server.client, "m", min_worker=1, max_worker=1).status_code == 200
        assert _scale(server.client, "m", min_worker=2).status_code == 200
        # Let the pending restart's moment pass (the back-off after ``failures`` failures).
        time.sleep(restart_delay(failures) + 1.0)
        assert _statuses(server.client, "m") == ["READY", "READY"]
        described = {w["pid"] for w in server.client.get("/models/m").json()["workers"]}
        assert set(server.worker_pids()) == described  # no live worker outside the model
    finally:
        server.stop()
