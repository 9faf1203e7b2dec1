"""The Runtime API's errors as botocore parses them (rest-json).

The code travels in ``x-amzn-ErrorType`` and the JSON body carries ``Message`` plus the shape's other members, so
``client.exceptions.ModelError`` is raised with ``e.response["OriginalStatusCode"]`` and friends. Status codes are
those of botocore's ``sagemaker-runtime`` model.
"""

from __future__ import annotations

import json


class APIError(Exception):
    """An error answer: ``status``, the error ``code`` (the shape's name) and the body's members."""

    status = 500
    code = "InternalFailure"

    def __init__(self, message: str, **members: object):
        super().__init__(message)
        self.message = message
        self.members = members

    def body(self) -> bytes:
        return json.dumps({"Message": self.message, **self.members}).encode()


class ValidationError(APIError):
    status, code = 400, "ValidationError"


class ModelNotReadyException(APIError):
    status, code = 429, "ModelNotReadyException"


class InternalFailure(APIError):
    status, code = 500, "InternalFailure"


class ServiceUnavailable(APIError):
    status, code = 503, "ServiceUnavailable"


class ModelError(APIError):
    """The container answered 4xx/5xx (424, with the container's status and message)."""

    status, code = 424, "ModelError"

    def __init__(self, original_status: int, original_message: str, container: str = "primary",
                 log_location: str = "the container's log"):
        kind = "client" if original_status < 500 else "server"
        message = (f'Received {kind} error ({original_status}) from {container} with message "{original_message}". '
                   f"See {log_location} for more information.")
        super().__init__(message, OriginalStatusCode=original_status, OriginalMessage=original_message)
        self.original_status = original_status
        self.original_message = original_message


MAX_ORIGINAL_MESSAGE = 4096


def original_message(body: bytes) -> str:
    """The container's error body as text, bounded (SageMaker relays it in the error's message)."""
    return body[:MAX_ORIGINAL_MESSAGE].decode("utf-8", "replace")
