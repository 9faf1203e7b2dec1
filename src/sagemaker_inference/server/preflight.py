"""Checks made before any worker starts, so that an operator's mistake is one line naming the fix
instead of every worker failing inside ``model_fn``."""

from __future__ import annotations

import os


def model_dir_problem(model_dir: str) -> str | None:
    """What is wrong with the single-model directory, or None when it can be served."""
    fix = "pass --model-dir DIR (or --example to try the bundled model), or mount the model there"
    try:
        entries = os.listdir(model_dir)
    except FileNotFoundError:
        return f"model directory {model_dir} does not exist; {fix}"
    except NotADirectoryError:
        return f"model directory {model_dir} is a file, not a directory; {fix}"
    except OSError as exc:
        return f"model directory {model_dir} cannot be read ({exc.strerror or exc})"
    if not entries:
        return f"model directory {model_dir} is empty: it needs the model files and code/inference.py; {fix}"
    return None
