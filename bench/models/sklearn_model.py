"""scikit-learn LogisticRegression (64 features, 4 classes) that the benchmark saved with joblib; returns
predict_proba for a 1x64 JSON array."""

import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    return model.predict_proba(data)
