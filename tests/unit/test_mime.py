from __future__ import annotations

import pytest

from sagemaker_inference import _mime

JSON, CSV, NPY = "application/json", "text/csv", "application/x-npy"
PREFERENCE = (JSON, CSV, NPY)


@pytest.mark.parametrize(
    ("value", "essence", "charset", "q"),
    [
        ("application/json", JSON, None, 1.0),
        ('Application/JSON ; Charset="UTF-8"', JSON, "utf-8", 1.0),
        ("text/csv;q=0.5;charset=latin-1", CSV, "latin-1", 0.5),
        ("*/*;q=abc", "*/*", None, 1.0),
        ("text/*;q=7", "text/*", None, 1.0),
        ("text/csv;q=-1", CSV, None, 0.0),
        ("", "", None, 1.0),
    ],
)
def test_parse(value, essence, charset, q):
    media_type = _mime.parse(value)
    assert (media_type.essence, media_type.charset, media_type.q) == (essence, charset, q)


def test_parse_keeps_other_parameters():
    assert _mime.parse("text/csv; header=present").params == (("header", "present"),)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", JSON),
        ("text/csv", CSV),
        ("text/csv, application/json", CSV),  # ties: the client's order, as upstream
        ("text/csv;q=0.5, application/json", JSON),
        ("*/*", JSON),
        ("", JSON),
        ("text/*", CSV),
        ("application/*", JSON),
        ("*/*, application/json;q=0", CSV),
        ("text/html", None),
        ("application/json;q=0", None),
        ("application/x-npy;q=0.9, */*;q=0.1", NPY),
        ("application/json; charset=utf-8", JSON),
    ],
)
def test_negotiate(accept, expected):
    assert _mime.negotiate(accept.replace(" ", "").split(","), PREFERENCE) == expected


def test_preference_puts_the_default_first_and_is_deterministic():
    assert _mime.preference(CSV, {NPY, JSON, CSV, "x/y"}) == (CSV, JSON, NPY, "x/y")
    assert _mime.preference("text/html", {CSV, JSON}) == (JSON, CSV)
    assert _mime.preference(None, {CSV}) == (CSV,)


def test_caches_are_bounded():
    for i in range(_mime._CACHE_LIMIT + 10):
        _mime.parse(f"x/y{i}")
        _mime.negotiate([f"x/y{i}"], PREFERENCE)
    assert len(_mime._parsed) <= _mime._CACHE_LIMIT
    assert len(_mime._negotiated) <= _mime._CACHE_LIMIT
