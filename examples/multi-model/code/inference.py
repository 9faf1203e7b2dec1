"""One inference script, many models: each model directory carries its own parameters.

On a multi-model endpoint every model is loaded by its own worker(s), from its own directory,
with the ``code/inference.py`` found there. Here both example models share this code and differ
only in ``model.json``: a temperature in degrees Celsius becomes Fahrenheit or Kelvin.
"""

import json
import os

import numpy as np


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        params = json.load(f)
    return float(params["scale"]), float(params["offset"])


def predict_fn(data, model):
    scale, offset = model
    return np.asarray(data, dtype=np.float64) * scale + offset
