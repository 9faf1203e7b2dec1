"""Echo: the request's JSON comes back unchanged. Measures the server and the toolkit path, not a model."""

import json


def model_fn(model_dir):
    return None


def input_fn(input_data, content_type):
    return json.loads(input_data)


def predict_fn(data, model):
    return data


def output_fn(prediction, accept):
    return json.dumps(prediction)
