"""Build the example's model directory: an iris classifier plus the serving code.

    python train.py /tmp/ml-sklearn/model    # writes model.joblib and code/inference.py there

The iris data ships inside scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import sys

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))


def train(model_dir: str) -> str:
    """Fit, save ``model.joblib`` into ``model_dir`` with a copy of ``code/``; return ``model_dir``."""
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(model, os.path.join(model_dir, "model.joblib"))
    shutil.copytree(os.path.join(HERE, "code"), os.path.join(model_dir, "code"), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return model_dir


if __name__ == "__main__":
    print(train(sys.argv[1] if len(sys.argv) > 1 else "model"))
