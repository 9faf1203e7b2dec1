from __future__ import annotations

import numpy as np
import pytest

from sagemaker_inference import content_types, default_inference_handler, errors

handler = default_inference_handler.DefaultInferenceHandler()


def test_default_model_and_predict_fns_raise_not_implemented():
    with pytest.raises(NotImplementedError, match="Please provide a model_fn implementation"):
        handler.default_model_fn("/model")
    with pytest.raises(NotImplementedError, match="Please provide a predict_fn implementation"):
        handler.default_predict_fn(1, None)


def test_default_input_fn_calls_decoder_decode_through_the_module(monkeypatch):
    calls = []
    monkeypatch.setattr("sagemaker_inference.decoder.decode", lambda data, ct: calls.append((data, ct)) or "decoded")
    assert handler.default_input_fn("data", content_types.JSON) == "decoded"
    assert calls == [("data", content_types.JSON)]


def test_default_output_fn_calls_encoder_encode_and_parse_accept_through_the_modules(monkeypatch):
    monkeypatch.setattr("sagemaker_inference.encoder.encode", lambda p, ct: f"{p}:{ct}")
    monkeypatch.setattr("sagemaker_inference.utils.parse_accept", lambda accept: ["text/csv"])
    assert handler.default_output_fn("x", "ignored") == ("x:text/csv", "text/csv")


@pytest.mark.parametrize(
    ("accept", "expected_type", "expected_body"),
    [
        ("application/json", content_types.JSON, "[1, 2]"),
        ("text/csv", content_types.CSV, "1\n2\n"),
        ("text/html, text/csv", content_types.CSV, "1\n2\n"),
        ("application/json;q=0.2, text/csv;q=0.8", content_types.CSV, "1\n2\n"),
        ("*/*", content_types.JSON, "[1, 2]"),
    ],
)
def test_default_output_fn_negotiates(accept, expected_type, expected_body):
    assert handler.default_output_fn(np.array([1, 2]), accept) == (expected_body, expected_type)


def test_default_output_fn_wildcard_prefers_the_configured_default(monkeypatch):
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
    assert handler.default_output_fn([1], "*/*") == ("1\n", content_types.CSV)


def test_default_output_fn_without_an_acceptable_type_raises_406():
    with pytest.raises(errors.UnsupportedFormatError) as excinfo:
        handler.default_output_fn([1], "text/html")
    assert excinfo.value.status_code == 406
