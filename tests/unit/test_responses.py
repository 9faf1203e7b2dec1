from __future__ import annotations

import pytest

from sagemaker_inference import _responses, errors
from sagemaker_inference.context import Context, PredictionException


@pytest.mark.parametrize(
    ("exc", "unsupported_status", "expected"),
    [
        (errors.GenericInferenceToolkitError(409, "m", "p"), 415, (409, "GenericInferenceToolkitError", "m", "p")),
        (errors.UnsupportedFormatError("x"), 406, (406, "UnsupportedFormatError")),
        (errors.UnsupportedFormatError("x"), 415, (415, "UnsupportedFormatError")),
        (PredictionException("nope", 418), 415, (418, "PredictionException", "nope", "nope")),
        (RuntimeError(), 415, (500, "RuntimeError", "Invalid Request", "Invalid Request")),
        (KeyError("k"), 415, (500, "KeyError", "'k'", "'k'")),
    ],
)
def test_as_http_error(exc, unsupported_status, expected):
    assert _responses.http_error(exc, unsupported_status)[: len(expected)] == expected


def test_as_http_error_handles_subclasses_without_super_init_and_long_messages():
    class Custom(errors.BaseInferenceToolkitError):
        def __init__(self):
            self.status_code = 400
            self.message = "x" * 5000
            self.phrase = None

    error = _responses.http_error(Custom())
    assert error.code == 400
    assert len(error.message) == 1024 and error.message.endswith("...")
    assert error.phrase == error.message


@pytest.mark.parametrize("status_code", ["teapot", None, 42, 1000])
def test_a_nonsense_status_code_becomes_500(status_code):
    assert _responses.http_error(errors.BaseInferenceToolkitError(status_code, "m", "p")).code == 500


def test_respond_accepts_a_tuple_or_a_bare_body():
    context = Context("m", "/d", None, 2, None, "v")
    context._begin_batch({0: "a", 1: "b"}, [{}, {}])
    assert _responses.respond(context, 0, ("body", "text/plain"), "application/json") == "body"
    assert _responses.respond(context, 1, "bare", "application/json") == "bare"
    assert [context.get_response_content_type(i) for i in range(2)] == ["text/plain", "application/json"]


def test_report_sets_every_index_and_logs_once(caplog):
    context = Context("m", "/d", None, 2, None, "v")
    context._begin_batch({0: "a", 1: "b"}, [{}, {}])
    body = _responses.report(context, [0, 1], ValueError("bad\nthing"))
    assert body.endswith("\n") and '"code": 500' in body
    assert [context.get_response_status(i) for i in range(2)] == [(500, "bad thing")] * 2
    assert len([r for r in caplog.records if r.name == "sagemaker-inference"]) == 1
