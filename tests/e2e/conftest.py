"""Fixtures for end-to-end tests: a model dir factory and a server factory that cleans up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from tests.e2e.serverproc import ServerProcess, write_model

ECHO_MODEL = """
import json

def model_fn(model_dir):
    return "echo"

def input_fn(data, content_type):
    return json.loads(data)

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return json.dumps(prediction)
"""


@pytest.fixture
def model_dir(tmp_path: Path) -> Callable[..., Path]:
    """``model_dir(inference_py, name="model", **files)`` writes a model dir under tmp_path."""

    def make(inference_py: str, name: str = "model", **files: str) -> Path:
        return write_model(tmp_path / name, inference_py, **files)

    return make


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerProcess]]:
    """``serve(*args, env=None, ready=True)`` starts a server; every one started is stopped at the end."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True, workers: int = 1,
              argv: list[str] | None = None) -> ServerProcess:
        extra = ["--workers", str(workers)] if argv is None and "--workers" not in args else []
        server = ServerProcess([*extra, *args], env=env, argv=argv)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()
