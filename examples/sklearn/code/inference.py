"""A scikit-learn model served with the toolkit: load it once, predict per request.

Only ``model_fn`` and ``predict_fn`` are needed: the toolkit decodes JSON, CSV and NPY bodies to
numpy arrays and encodes the predictions in the format the Accept header asks for.
"""

import os

import joblib
import numpy as np


def model_fn(model_dir):
    """Called once per worker, with the model directory (``/opt/ml/model`` on SageMaker)."""
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    """``data`` is the decoded request: one row of features, or a list of rows."""
    # A single CSV row or a flat JSON list decodes to 1-d; scikit-learn wants rows.
    return model.predict(np.atleast_2d(data))
