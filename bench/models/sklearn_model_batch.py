"""scikit-learn model with a batch function: one predict_proba for the whole batch. MMS never calls it."""

import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    return model.predict_proba(data)


def predict_batch_fn(inputs, model):
    rows = [np.atleast_2d(x) for x in inputs]
    out = model.predict_proba(np.vstack(rows))
    return np.split(out, np.cumsum([len(r) for r in rows])[:-1])
