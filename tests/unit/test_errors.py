from __future__ import annotations

import pytest

from sagemaker_inference import errors
from sagemaker_inference.context import PredictionException


def test_unsupported_format_error_has_upstreams_message():
    error = errors.UnsupportedFormatError("text/plain")
    assert error.args == (error._message,)
    # textwrap.dedent is a no-op upstream (the first line is not indented), so the indentation stays.
    assert str(error) == (
        "Content type text/plain is not supported by this framework.\n\n"
        "            Please implement input_fn to to deserialize the request data or an output_fn to\n"
        "            serialize the response. For more information, see the SageMaker Python SDK README."
    )
    assert "None" in str(errors.UnsupportedFormatError(None))
    assert not isinstance(error, errors.BaseInferenceToolkitError)


def test_base_inference_toolkit_error():
    error = errors.BaseInferenceToolkitError(403, "Foo", "Bar")
    assert (error.status_code, error.message, error.phrase) == (403, "Foo", "Bar")
    assert str(error) == "(403, 'Foo', 'Bar')"


def test_generic_inference_toolkit_error_defaults():
    error = errors.GenericInferenceToolkitError(500)
    assert (error.message, error.phrase) == ("Invalid Request", "Invalid Request")
    assert errors.GenericInferenceToolkitError(400, "msg").phrase == "msg"


@pytest.mark.parametrize(
    ("error", "code", "bases"),
    [
        (errors.UnsupportedMediaTypeError("text/plain"), 415, (errors.UnsupportedFormatError,)),
        (errors.NotAcceptableError("text/html"), 406, (errors.UnsupportedFormatError,)),
        (errors.DecodeError("bad"), 400, (ValueError,)),
    ],
)
def test_status_errors(error, code, bases):
    assert error.status_code == code
    assert isinstance(error, (errors.BaseInferenceToolkitError, *bases))
    assert all(isinstance(error, base) for base in bases)
    assert str(error) == error.message == error.phrase


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
    assert errors._as_http_error(exc, unsupported_status)[: len(expected)] == expected


def test_as_http_error_handles_subclasses_without_super_init_and_long_messages():
    class Custom(errors.BaseInferenceToolkitError):
        def __init__(self):
            self.status_code = 400
            self.message = "x" * 5000
            self.phrase = None

    error = errors._as_http_error(Custom())
    assert error.code == 400
    assert len(error.message) == 1024 and error.message.endswith("...")
    assert error.phrase == error.message
