"""How the outcome of one request is written to the MMS context: the one place errors become HTTP.

A success sets the request's content type and returns its body. A failure is mapped from the
exception's *type* (never its text) to a status, an error type name and a short message, logged
with its traceback, and written as MMS's JSON error body::

    {"code": 415, "type": "UnsupportedMediaTypeError", "message": "..."}

with ``Content-Type: application/json`` and the message, CR/LF replaced, as reason phrase. The
traceback is added to the body (``"traceback"``) only while the "sagemaker-inference" logger is
enabled for DEBUG.
"""

from __future__ import annotations

import json
import logging as _stdlib_logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from sagemaker_inference import content_types, logging, utils
from sagemaker_inference.errors import BaseInferenceToolkitError, UnsupportedFormatError

logger = logging.get_logger()

_MESSAGE_LIMIT = 1024


class HTTPError(NamedTuple):
    """How an exception is reported to the client: status, error type, message, reason phrase."""

    code: int
    type: str
    message: str
    phrase: str


def http_error(exc: BaseException, unsupported_status: int = 415) -> HTTPError:
    """Map an exception raised while serving one request to what the client sees.

    ``BaseInferenceToolkitError`` → its own status, message and phrase (a status that is not an
    integer in 100..599 becomes 500); a bare ``UnsupportedFormatError`` → ``unsupported_status``;
    MMS's ``PredictionException`` → its ``error_code``; anything else → 500 with ``str(exc)``,
    as upstream's ``GenericInferenceToolkitError(500, str(exc))`` would say.
    """
    from sagemaker_inference.context import PredictionException

    name = type(exc).__name__
    if isinstance(exc, BaseInferenceToolkitError):
        message = "" if exc.message is None else str(exc.message)
        phrase = message if exc.phrase is None else str(exc.phrase)
        return HTTPError(_status(exc.status_code), name, _short(message), _short(phrase))
    if isinstance(exc, UnsupportedFormatError):
        message = _short(str(exc))
        return HTTPError(unsupported_status, name, message, message)
    if isinstance(exc, PredictionException):
        message = _short(str(exc.message))
        return HTTPError(_status(exc.error_code), name, message, message)
    message = _short(str(exc) or "Invalid Request")
    return HTTPError(500, name, message, message)


def _status(code: Any) -> int:
    try:
        status = int(code)
    except (TypeError, ValueError):
        return 500
    return status if 100 <= status <= 599 else 500


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def respond(context: Any, idx: int, result: Any, accept: str) -> Any:
    """Record the content type of a successful response and return its body.

    ``(body, content_type)`` tuples are accepted for backwards compatibility; a bare body is
    sent with the request's accept value as content type, as upstream.
    """
    if isinstance(result, tuple):
        response, response_content_type = result[0], result[1]
    else:
        response, response_content_type = result, accept
    context.set_response_content_type(idx, response_content_type)
    return response


def report(context: Any, indices: Iterable[int], exc: BaseException, trace: str | None = None) -> Any:
    """Log ``exc``, set the error status on every index in ``indices`` and return the body.

    A ``BaseInferenceToolkitError`` with a status below 400 (e.g. 204 No Content) is not an
    error for the client: its message is the body and no JSON content type is set.
    """
    error = http_error(exc)
    # A client's mistake is one WARNING line (its traceback only at DEBUG); a failure of the
    # model's code is an ERROR with the traceback, which is what whoever debugs it needs.
    if error.code >= 500:
        logger.error("%s %s: %s", error.code, error.type, error.message, exc_info=exc)
    else:
        logger.warning("%s %s: %s", error.code, error.type, error.message,
                       exc_info=exc if logger.isEnabledFor(_stdlib_logging.DEBUG) else None)
    phrase = utils.remove_crlf(error.phrase)
    if error.code < 400:
        body: Any = error.message
    else:
        fields = {"code": error.code, "type": error.type, "message": error.message}
        if logger.isEnabledFor(_stdlib_logging.DEBUG):
            fields["traceback"] = trace if trace is not None else _format_traceback(exc)
        body = json.dumps(fields, indent=2) + "\n"
    for idx in indices:
        if error.code >= 400:
            context.set_response_content_type(idx, content_types.JSON)
        if idx:
            context.set_response_status(code=error.code, phrase=phrase, idx=idx)
        else:  # the exact call upstream makes, which tests with mock contexts assert
            context.set_response_status(code=error.code, phrase=phrase)
    return body


def _format_traceback(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
