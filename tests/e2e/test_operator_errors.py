"""An operator's mistakes, as a new user makes them, against the real server: each is one clear
line naming the fix and a non-zero exit, never a traceback per worker or a blame on model_fn.

Also what the server says when all is well: which user module it loaded and what it defines.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.serverproc import write_model

TIMEOUT = 60


def _serve(*args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    import os

    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MMS_", "TS_"))}
    return subprocess.run([sys.executable, "-m", "sagemaker_inference", "serve", "--host", "127.0.0.1",
                           "--port", "0", *args], env={**inherited, **(env or {})}, cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT)


def _one_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    lines = [line for line in result.stderr.splitlines() if "startup failed" in line or "error" in line.lower()]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "model_fn" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_a_model_dir_that_cannot_be_served_is_one_line_naming_the_fix(tmp_path, kind):
    target = tmp_path / "model"
    if kind == "empty":
        target.mkdir()
    elif kind == "file":
        target.write_text("not a directory")
    result = _serve("--model-dir", str(target), "--workers", "2")
    assert result.returncode == 1
    _one_line(result, str(target), "--model-dir", {"missing": "does not exist", "empty": "is empty",
                                                    "file": "not a directory"}[kind])


def test_no_opt_ml_model_names_the_default_directory(tmp_path):
    result = _serve(env={"SAGEMAKER_BASE_DIR": str(tmp_path / "opt" / "ml")})
    assert result.returncode == 1
    _one_line(result, str(tmp_path / "opt" / "ml" / "model"), "does not exist", "--example")


def test_a_user_module_without_model_fn_is_named_with_one_traceback(tmp_path):
    model = write_model(tmp_path / "model", "def predict_fn(data, model):\n    return data\n")
    result = _serve("--model-dir", str(model), "--workers", "2")
    assert result.returncode == 1
    assert f"{model}/code/inference.py defines no model_fn" in result.stderr
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert "SIGKILL" not in result.stderr
    summary = next(line for line in result.stderr.splitlines() if "startup failed" in line)
    assert summary.rstrip().endswith("(https://sagemaker.readthedocs.io/en/stable/)")  # not cut at a newline


def test_no_user_module_is_named(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\0")
    result = _serve("--model-dir", str(tmp_path / "model"))
    assert result.returncode == 1
    assert f"no user module inference.py in {tmp_path / 'model'}/code" in result.stderr


def test_startup_says_which_user_module_was_loaded_and_what_it_defines(serve, model_dir):
    directory = model_dir("""
        def model_fn(model_dir):
            return None

        def input_fn(data, content_type):
            return data

        def predict_fn(data, model):
            return data
    """)
    server = serve("--model-dir", str(directory), workers=2)
    line = f"user module {directory}/code/inference.py defines model_fn, input_fn, predict_fn"
    assert server.log.count(line) == 1, server.log


def test_version():
    result = subprocess.run([sys.executable, "-m", "sagemaker_inference", "--version"], capture_output=True,
                            text=True, timeout=TIMEOUT)
    from importlib.metadata import version

    import sagemaker_inference

    assert result.returncode == 0
    assert sagemaker_inference.__version__ == version("sagemaker-inference")
    assert result.stdout.startswith(f"sagemaker-inference {sagemaker_inference.__version__} (Python ")


@pytest.mark.parametrize(("name", "value"), [
    ("SAGEMAKER_STARTUP_TIMEOUT", "nan"),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "nan"),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "inf"),
    ("SAGEMAKER_TS_MAX_BATCH_DELAY", "nan"),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "1e400"),
    ("SAGEMAKER_CONTAINER_LOG_LEVEL", "²"),
    ("SAGEMAKER_MODEL_SERVER_WORKERS", "٣"),
])
def test_non_finite_and_non_ascii_numbers_are_refused_by_name(tmp_path, name, value):
    model = write_model(tmp_path / "model", "def model_fn(d):\n    return None\n")
    result = _serve("--model-dir", str(model), env={name: value})
    assert result.returncode == 2
    assert f"{name}={value!r}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", [["--timeout", "nan"], ["--max-batch-delay", "inf"]])
def test_non_finite_flags_are_refused(tmp_path, flag):
    model = write_model(tmp_path / "model", "def model_fn(d):\n    return None\n")
    result = _serve("--model-dir", str(model), *flag)
    assert result.returncode == 2
    assert flag[0] in result.stderr and "finite" in result.stderr

