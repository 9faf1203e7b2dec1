"""Workloads: a model dir (code/inference.py from bench/models/, plus any artifact the benchmark builds) and the
request body every connection sends. Both stacks serve the identical directory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MODELS = Path(__file__).resolve().parent / "models"

# 103 bytes, as in perf-notes.md.
ECHO_BODY = b'{"instances": [{"id": 7, "text": "the quick brown fox jumps over a lazy dog"}], "parameters": {"k": 3}}'


def _row_body() -> bytes:
    # 64 floats in a 1x64 JSON array; fixed values so every run sends the same bytes.
    values = [round(((i * 37) % 101) / 101 - 0.5, 4) for i in range(64)]
    return json.dumps([values]).encode()


def _build_torch(model_dir: Path) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 16))
    torch.jit.save(torch.jit.script(net.eval()), str(model_dir / "model.pt"))


def _build_sklearn(model_dir: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 64))
    y = rng.integers(0, 4, 512)
    joblib.dump(LogisticRegression(max_iter=200).fit(x, y), model_dir / "model.joblib")


@dataclass(frozen=True)
class Workload:
    name: str
    source: str  # file in bench/models/, copied to code/inference.py
    body: bytes
    content_type: str = "application/json"
    accept: str = "application/json"
    build: Callable[[Path], None] | None = None  # writes artifacts into the model dir, in the harness's Python
    needs: tuple[str, ...] = ()  # extra packages the model's workers import (MMS gets them, see stacks.py)

    def materialize(self, model_dir: Path) -> Path:
        """Write the model dir (``model_dir/code/inference.py`` and artifacts) and return it."""
        (model_dir / "code").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MODELS / self.source, model_dir / "code" / "inference.py")
        if self.build is not None:
            self.build(model_dir)
        return model_dir


_ROW = _row_body()
_TORCH = ("torch",)
_SKLEARN = ("sklearn", "joblib")

WORKLOADS = {
    w.name: w
    for w in [
        Workload("echo", "echo.py", ECHO_BODY),
        Workload("numeric", "numeric.py", _ROW),
        Workload("numeric-batch", "numeric_batch.py", _ROW),
        Workload("torch", "torch_mlp.py", _ROW, build=_build_torch, needs=_TORCH),
        Workload("torch-batch", "torch_mlp_batch.py", _ROW, build=_build_torch, needs=_TORCH),
        Workload("sklearn", "sklearn_model.py", _ROW, build=_build_sklearn, needs=_SKLEARN),
        Workload("sklearn-batch", "sklearn_model_batch.py", _ROW, build=_build_sklearn, needs=_SKLEARN),
    ]
}


def get(names: str) -> list[Workload]:
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    return [WORKLOADS[n] for n in chosen]
