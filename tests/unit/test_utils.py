from __future__ import annotations

import pytest

from sagemaker_inference import utils


def test_read_and_write_file(tmp_path):
    path = str(tmp_path / "f")
    assert utils.write_file(path, "data") is None
    assert utils.read_file(path) == "data"
    utils.write_file(path, b"bytes", mode="wb")
    assert utils.read_file(path, mode="rb") == b"bytes"


@pytest.mark.parametrize(
    "key",
    ["Content-Type", "content-type", "ContentType", "contentType", "Content-type", "content-Type", "Content-TypeX"],
)
def test_retrieve_content_type_header_matches_upstream_spellings(key):
    assert utils.retrieve_content_type_header({"body": {}, key: "application/json"}) == "application/json"


@pytest.mark.parametrize("key", ["CONTENT-TYPE", "content_type", "X-Content-Type"])
def test_retrieve_content_type_header_misses(key):
    assert utils.retrieve_content_type_header({key: "application/json"}) is None


def test_retrieve_content_type_header_returns_the_first_match_verbatim():
    headers = {"content-type": "text/csv; charset=UTF-8", "Content-Type": "application/json"}
    assert utils.retrieve_content_type_header(headers) == "text/csv; charset=UTF-8"


def test_parse_accept_is_upstream_exact():
    assert utils.parse_accept("application/json, text/csv;q=0.9") == ["application/json", "text/csv;q=0.9"]
    with pytest.raises(AttributeError):
        utils.parse_accept(None)


def test_remove_crlf_preserves_length():
    assert utils.remove_crlf("a\r\nb\nc") == "a  b c"
