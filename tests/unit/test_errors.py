from __future__ import annotations

import pytest

from sagemaker_inference import errors


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
