"""This module contains custom exceptions.

Hierarchy (the upstream classes keep their exact constructors and attributes)::

    Exception
    ├── UnsupportedFormatError(content_type)              upstream; bare → 415 from input_fn, 406 from output_fn
    └── BaseInferenceToolkitError(status_code, message, phrase)   upstream; → its status_code
        ├── GenericInferenceToolkitError(status_code, message=None, phrase=None)   upstream
        ├── UnsupportedMediaTypeError(content_type)       415, also an UnsupportedFormatError
        ├── NotAcceptableError(accept)                    406, also an UnsupportedFormatError
        └── DecodeError(message)                          400, also a ValueError

The three new classes carry their HTTP status in the type, so ``_responses.http_error`` maps every
exception to a response with ``isinstance`` checks only (never by looking at ``str(exc)``), while
``except UnsupportedFormatError`` / ``except ValueError`` clauses written against upstream keep
catching what they caught before.
"""

from __future__ import annotations

import textwrap
from typing import Any


class UnsupportedFormatError(Exception):
    """Exception used to indicate that an unsupported content type was provided."""

    def __init__(self, content_type: Any, **kwargs: Any) -> None:
        self._message = textwrap.dedent(
            f"""Content type {content_type} is not supported by this framework.

            Please implement input_fn to to deserialize the request data or an output_fn to
            serialize the response. For more information, see the SageMaker Python SDK README."""
        )
        super().__init__(self._message, **kwargs)


class BaseInferenceToolkitError(Exception):
    """Exception used to indicate a problem that occurred during inference.

    This is meant to be extended from so that customers may handle errors
    within inference servers.
    """

    def __init__(self, status_code: int, message: Any, phrase: Any) -> None:
        """Initializes an instance of BaseInferenceToolkitError.

        Args:
            status_code (int): HTTP Error Status Code to send to client
            message (str): Response message to send to client
            phrase (str): Response body to send to client
        """
        self.status_code = status_code
        self.message = message
        self.phrase = phrase
        super().__init__(status_code, message, phrase)


class GenericInferenceToolkitError(BaseInferenceToolkitError):
    """Exception used to indicate a problem that occurred during inference.

    This is meant to be a generic implementation of the BaseInferenceToolkitError
    for re-raising unexpected exceptions in a way that can be sent back to the client.
    """

    def __init__(self, status_code: int, message: Any = None, phrase: Any = None) -> None:
        """Initializes an instance of GenericInferenceToolkitError.

        Args:
            status_code (int): HTTP Error Status Code to send to client
            message (str): Response message to send to client
            phrase (str): Response body to send to client
        """
        message = message or "Invalid Request"
        phrase = phrase or message
        super().__init__(status_code, message, phrase)


class _StatusError(BaseInferenceToolkitError):
    """A toolkit error whose ``str()`` is its message (``args == (message,)``), not a tuple."""

    status: int = 500

    def __init__(self, message: str) -> None:
        self.status_code = self.status
        self.message = message
        self.phrase = message
        Exception.__init__(self, message)


class UnsupportedMediaTypeError(_StatusError, UnsupportedFormatError):
    """The request's Content-Type cannot be decoded (HTTP 415)."""

    status = 415

    def __init__(self, content_type: Any, message: str | None = None) -> None:
        self.content_type = content_type
        self._message = message or f"Content type {content_type} is not supported."
        super().__init__(self._message)


class NotAcceptableError(_StatusError, UnsupportedFormatError):
    """No response type listed in the request's Accept header can be produced (HTTP 406)."""

    status = 406

    def __init__(self, accept: Any, message: str | None = None) -> None:
        self.accept = accept
        self._message = message or f"Accept {accept} is not supported: no response type is acceptable."
        super().__init__(self._message)


class DecodeError(_StatusError, ValueError):
    """The request body does not decode as its Content-Type says (HTTP 400).

    Raised by ``decoder.decode`` for malformed JSON/CSV/NPY/NPZ, bytes invalid in the declared
    charset, object (pickled) arrays and values outside what a numeric array can hold. The
    original exception is chained as ``__cause__``.
    """

    status = 400
