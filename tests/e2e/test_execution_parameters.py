"""``/execution-parameters``: derived from the configuration, overridable by the model's hook."""

from __future__ import annotations

HOOK_MODEL = """
def model_fn(model_dir):
    return 1

def predict_fn(data, model):
    return data

def execution_parameters_fn():
    return {"MaxConcurrentTransforms": 7, "BatchStrategy": "MULTI_RECORD"}
"""

FAILING_HOOK_MODEL = """
def model_fn(model_dir):
    return 1

def execution_parameters_fn():
    raise RuntimeError("no")
"""


def test_derived_from_workers_batching_and_payload_limit(serve, model_dir):
    server = serve("--model-dir", str(model_dir(FAILING_HOOK_MODEL)), "--workers", "2", "--batch-size", "3",
                   env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "5"})
    assert server.client.get("/execution-parameters").json() == {
        "MaxConcurrentTransforms": 6, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 5}
    assert "execution parameters hook failed" in server.log


def test_user_hook_overrides_fields(serve, model_dir):
    server = serve("--model-dir", str(model_dir(HOOK_MODEL)))
    assert server.client.get("/execution-parameters").json() == {
        "MaxConcurrentTransforms": 7, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
