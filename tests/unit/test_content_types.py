from __future__ import annotations

from sagemaker_inference import content_types, parameters


def test_values():
    assert (content_types.JSON, content_types.CSV, content_types.NPY, content_types.NPZ) == (
        "application/json",
        "text/csv",
        "application/x-npy",
        "application/x-npz",
    )
    assert (content_types.ANY, content_types.OCTET_STREAM) == ("*/*", "application/octet-stream")
    assert content_types.UTF8_TYPES == ["application/json", "text/csv"]


def test_parameter_names():
    assert parameters.MODEL_SERVER_VMARGS == "SAGEMAKER_MODEL_SERVER_VMARGS"
    assert parameters.MAX_REQUEST_SIZE == "SAGEMAKER_MAX_PAYLOAD_IN_MB"
    assert parameters.LOG_LEVEL_ENV == "SAGEMAKER_CONTAINER_LOG_LEVEL"
    assert parameters.MODEL_SERVER_TIMEOUT_SECONDS_ENV == "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"
