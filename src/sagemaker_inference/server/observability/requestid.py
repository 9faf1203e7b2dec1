"""Which id a request goes by: the client's ``X-Amzn-SageMaker-Inference-Id`` when it is a
valid one, else one we make up (``next_request_id``).

SageMaker passes the caller's ``InferenceId`` through in that header (up to 64 printable
characters). Using it as our request id lets an operator find a client's request in the logs by
the id the client chose; it is echoed in ``x-request-id`` and reaches the handler through
``context.get_request_id``. Anything else in the header (too long, control characters,
non-ASCII) is ignored, since the id ends up in headers and log lines.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sagemaker_inference.server.http.protocol import next_request_id

if TYPE_CHECKING:
    from sagemaker_inference.server.http.parser import HTTPRequest

INFERENCE_ID_HEADER = b"x-amzn-sagemaker-inference-id"
MAX_LENGTH = 64
_VALID = re.compile(rb"[\x20-\x7e]{1,%d}" % MAX_LENGTH)


def valid_inference_id(value: bytes | None) -> bytes | None:
    """``value`` stripped if it may serve as a request id, else None."""
    if not value:
        return None
    value = value.strip()
    return value if _VALID.fullmatch(value) else None


def request_id_for(request: HTTPRequest) -> bytes:
    """The parser picked the header up (``App`` names it as the HTTP layer's ``id_header``)."""
    value = request.id_value
    return (value is not None and valid_inference_id(value)) or next_request_id()
