"""sagemaker_inference.streaming: Server-Sent Events framing and what counts as a stream."""

from __future__ import annotations

import numpy as np
import pytest

from sagemaker_inference.streaming import SSE_CONTENT_TYPE, ServerSentEvent, format_event, is_stream, sse


def test_strings_dicts_and_bytes_become_data_lines():
    assert format_event("hello") == "data: hello\n\n"
    assert format_event({"token": "a", "n": 1}) == 'data: {"token":"a","n":1}\n\n'
    assert format_event(b"raw") == "data: raw\n\n"
    assert format_event("two\nlines\r\nthree") == "data: two\ndata: lines\ndata: three\n\n"


def test_named_events_with_id_and_retry():
    event = ServerSentEvent({"x": 1}, event="update", id="7", retry=1500)
    assert format_event(event) == 'event: update\nid: 7\nretry: 1500\ndata: {"x":1}\n\n'
    with pytest.raises(ValueError):
        format_event(ServerSentEvent("x", event="a\nb"))


def test_sse_is_lazy_and_ends_with_done():
    pulled = []

    def tokens():
        for t in ("a", "b"):
            pulled.append(t)
            yield t

    stream = sse(tokens(), done="[DONE]")
    assert pulled == []  # nothing read ahead
    assert next(stream) == "data: a\n\n" and pulled == ["a"]
    assert list(stream) == ["data: b\n\n", "data: [DONE]\n\n"]
    assert SSE_CONTENT_TYPE == "text/event-stream"


@pytest.mark.parametrize("value", [iter([1]), (x for x in []), map(str, [1]), open(__file__)])
def test_iterators_are_streams(value):
    try:
        assert is_stream(value)
    finally:
        getattr(value, "close", lambda: None)()


@pytest.mark.parametrize("value", [b"x", "x", [1], (1,), {"a": 1}, bytearray(b"x"), np.arange(3), 3, None])
def test_whole_bodies_are_not(value):
    assert not is_stream(value)
