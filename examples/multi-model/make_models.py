"""Build the example's model repository: two models, ``fahrenheit`` and ``kelvin``.

    python make_models.py /tmp/ml-multi-model/models

writes ``/tmp/ml-multi-model/models/<name>/model/{model.json,code/inference.py}``, the layout SageMaker
uses on a multi-model endpoint (``/opt/ml/models/<name>/model``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {
    "fahrenheit": {"scale": 1.8, "offset": 32.0},
    "kelvin": {"scale": 1.0, "offset": 273.15},
}


def make_models(root: str) -> dict[str, str]:
    """Write every model under ``root``; return ``{name: model directory}``."""
    paths = {}
    for name, params in MODELS.items():
        model_dir = os.path.join(root, name, "model")
        os.makedirs(model_dir, exist_ok=True)
        with open(os.path.join(model_dir, "model.json"), "w") as f:
            json.dump(params, f)
        shutil.copytree(os.path.join(HERE, "code"), os.path.join(model_dir, "code"), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        paths[name] = model_dir
    return paths


if __name__ == "__main__":
    for name, path in make_models(sys.argv[1] if len(sys.argv) > 1 else "models").items():
        print(name, path)
