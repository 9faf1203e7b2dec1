"""Build the example's model directory: ``model.npz`` (a 4 -> 2 linear layer) and the code.

    python make_model.py /tmp/ml-batching/model

Same weights as the bundled example model: ``[[1, 2, 3, 4]]`` predicts ``[[1.5, 2.0]]``.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHT = np.array([[1.0, 0.5], [2.0, -1.0], [0.0, 1.0], [-1.0, 0.25]])
BIAS = np.array([0.5, -0.5])


def make_model(model_dir: str) -> str:
    """Write ``model.npz`` and ``code/`` into ``model_dir``; return it."""
    os.makedirs(model_dir, exist_ok=True)
    np.savez(os.path.join(model_dir, "model.npz"), weight=WEIGHT, bias=BIAS)
    shutil.copytree(os.path.join(HERE, "code"), os.path.join(model_dir, "code"), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return model_dir


if __name__ == "__main__":
    print(make_model(sys.argv[1] if len(sys.argv) > 1 else "model"))
