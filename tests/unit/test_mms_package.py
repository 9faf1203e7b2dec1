"""The ``mms`` package we ship: MMS 1.1.11's public names, backed by the classes our workers use."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mms
import mms.context
import mms.metrics.dimension
import mms.metrics.metric
import mms.metrics.metric_encoder
import mms.metrics.metrics_store
import mms.metrics.unit
import mms.service
import sagemaker_inference.context as ours
from sagemaker_inference.mms_compat import detect

UPSTREAM_MMS = next(Path("/work/upstream-venv/lib").glob("python3*/site-packages/mms"), None) \
    if Path("/work/upstream-venv/lib").is_dir() else None


def test_names_are_our_worker_classes() -> None:
    assert mms.service.PredictionException is ours.PredictionException
    assert mms.context.Context is ours.Context
    assert mms.context.RequestProcessor is ours.RequestProcessor
    assert mms.metrics.metrics_store.MetricsStore is ours.MetricsStore
    assert mms.metrics.metric.Metric is ours.Metric
    assert mms.metrics.dimension.Dimension is ours.Dimension
    assert mms.__version__ == "1.1.11" and mms.__implementation__ == "sagemaker-inference"


def test_prediction_exception_as_handlers_raise_it() -> None:
    exc = mms.service.PredictionException("bad input", 400)
    assert (exc.message, exc.error_code, str(exc)) == ("bad input", 400, "bad input : 400")
    assert mms.service.PredictionException("x").error_code == 500


def test_units_and_encoder() -> None:
    assert mms.metrics.unit.Units().units["ms"] == "Milliseconds"
    metric = mms.metrics.metric.Metric("T", 1.5, "ms", [mms.metrics.dimension.Dimension("Level", "Model")])
    encoded = json.loads(json.dumps(metric, cls=mms.metrics.metric_encoder.MetricEncoder))
    assert encoded["MetricName"] == "T" and encoded["Unit"] == "Milliseconds"
    assert encoded["Dimensions"] == [{"Name": "Level", "Value": "Model"}]


def _public_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_"):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{f.name}" for f in node.body
                          if isinstance(f, ast.FunctionDef) and (not f.name.startswith("_") or f.name == "__init__")}
    return names


@pytest.mark.skipif(UPSTREAM_MMS is None, reason="MMS 1.1.11 is not installed in /work/upstream-venv")
@pytest.mark.parametrize("module", ["context", "metrics/dimension", "metrics/metric", "metrics/metrics_store",
                                    "metrics/unit", "metrics/metric_encoder"])
def test_every_public_name_of_mms_exists(module: str) -> None:
    assert UPSTREAM_MMS is not None
    ours_module = sys.modules["mms." + module.replace("/", ".")]
    for name in _public_names(UPSTREAM_MMS / f"{module}.py"):
        owner, _, attribute = name.partition(".")
        value = getattr(ours_module, owner)
        assert not attribute or hasattr(value, attribute), f"mms.{module}: {name} is missing"


def test_service_module_has_what_handlers_import() -> None:
    assert callable(mms.service.emit_metrics) and mms.service.PREDICTION_METRIC == "PredictionTime"


def test_no_conflict_reported_without_the_java_distribution() -> None:
    assert detect.real_mms_version() is None
    assert detect.conflict_message() is None
    assert detect.mms_is_ours()


def test_the_java_distribution_beside_us_is_named_with_the_fix(tmp_path: Path) -> None:
    info = tmp_path / "multi_model_server-1.1.11.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: multi-model-server\nVersion: 1.1.11\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", "from sagemaker_inference.mms_compat import detect; "
                          "print(detect.conflict_message())"], env=env, capture_output=True, text=True, timeout=60)
    assert "multi-model-server 1.1.11 distribution (Java MMS) is installed" in out.stdout, out.stderr
    assert "pip uninstall -y multi-model-server" in out.stdout and "is ours" in out.stdout
