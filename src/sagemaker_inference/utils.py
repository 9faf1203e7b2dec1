"""This module contains utility functions related to reading files,
writing files, and retrieving information from requests.

Every function here is public and behaves exactly as upstream's (downstream containers call and
patch them). Real media-type parsing and content negotiation live in ``_mime``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CONTENT_TYPE_REGEX = re.compile("^[Cc]ontent-?[Tt]ype")


def read_file(path: str, mode: str = "r") -> Any:
    """Read data from a file.

    Args:
        path (str): path to the file.
        mode (str): mode which the file will be open.

    Returns:
        (str): contents of the file.
    """
    with open(path, mode) as f:
        return f.read()


def write_file(path: str, data: Any, mode: str = "w") -> None:
    """Write data to a file.

    Args:
        path (str): path to the file.
        data (str): data to be written to the file.
        mode (str): mode which the file will be open.
    """
    with open(path, mode) as f:
        f.write(data)


def retrieve_content_type_header(request_property: Mapping[str, Any]) -> Any:
    """Retrieve Content-Type header from incoming request.

    This function handles multiple spellings of Content-Type based on the presence of
    the dash and initial capitalization in each respective word.

    Args:
        request_property (dict): incoming request metadata

    Returns:
        (str): the request content type, verbatim, or None when there is none.
    """
    for key in request_property:
        if CONTENT_TYPE_REGEX.match(key):
            return request_property[key]
    return None


def parse_accept(accept: str) -> list[str]:
    """Parses the Accept header sent with a request.

    Upstream-exact: a comma split with spaces removed; no q-values, no wildcards. Content
    negotiation proper is done by ``DefaultInferenceHandler.default_output_fn``.

    Args:
        accept (str): the value of an Accept header.

    Returns:
        (list): A list containing the MIME types that the client is able to
            understand.
    """
    return accept.replace(" ", "").split(",")


def remove_crlf(illegal_string: str) -> str:
    """Removes characters prohibited in an HTTP reason phrase.

    Each CR and LF is replaced by one space, so the length is preserved.

    Args:
        illegal_string: The string containing prohibited characters.

    Returns:
        str: The input string with the prohibited characters removed.
    """
    return illegal_string.replace("\r", " ").replace("\n", " ")
