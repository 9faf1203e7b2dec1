"""The bundled example model: a tiny linear model, made here, nothing downloaded.

``model_fn`` builds a fixed 4 -> 2 weight matrix; ``predict_fn`` multiplies. Send it rows of 4
numbers as JSON, CSV or NPY and get rows of 2 back in the format your Accept header asks for.
Input and output go through the toolkit's default decoders and encoders.
"""

import numpy as np


def model_fn(model_dir):
    weights = np.array([[1.0, 0.5], [2.0, -1.0], [0.0, 1.0], [-1.0, 0.25]])
    bias = np.array([0.5, -0.5])
    return weights, bias


def predict_fn(data, model):
    weights, bias = model
    rows = np.atleast_2d(np.asarray(data, dtype=np.float64))
    if rows.shape[-1] != weights.shape[0]:
        raise ValueError(f"expected rows of {weights.shape[0]} numbers, got shape {rows.shape}")
    return rows @ weights + bias
