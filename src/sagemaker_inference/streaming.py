"""Streaming responses: what a handler returns to stream its answer, and Server-Sent Events.

Return an iterator (a generator) as a response body from ``transform_fn``, ``output_fn`` (also as
``(iterator, content_type)``) or ``predict_fn`` (with the default ``output_fn``), or from a
handler service's ``handle`` for one item: the server sends it with ``Transfer-Encoding: chunked``,
each yielded ``bytes``/``str`` (UTF-8) as soon as it is yielded. LLM clients usually expect
Server-Sent Events; ``sse`` frames any iterable of strings or dicts that way::

    from sagemaker_inference.streaming import SSE_CONTENT_TYPE, sse

    def transform_fn(model, data, content_type, accept):
        return sse(model.generate_tokens(data)), SSE_CONTENT_TYPE

See docs/streaming.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Union

SSE_CONTENT_TYPE = "text/event-stream"


class ServerSentEvent:
    """One event with the optional fields of the SSE format (``event``, ``id``, ``retry``)."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, data: Any, event: str | None = None, id: str | None = None, retry: int | None = None):
        self.data, self.event, self.id, self.retry = data, event, id, retry


Event = Union[str, bytes, dict, list, ServerSentEvent]


def format_event(item: Event) -> str:
    """One event as ``text/event-stream`` text: ``data:`` lines (one per line of the data; dicts and
    lists as JSON), optional ``event:``/``id:``/``retry:`` fields, and the blank line that ends it."""
    if isinstance(item, ServerSentEvent):
        fields = []
        for name in ("event", "id"):
            value = getattr(item, name)
            if value is not None:
                fields.append(f"{name}: {_one_line(name, str(value))}\n")
        if item.retry is not None:
            fields.append(f"retry: {int(item.retry)}\n")
        return "".join(fields) + _data_lines(item.data) + "\n"
    return _data_lines(item) + "\n"


def sse(events: Iterable[Event], done: str | None = None) -> Iterator[str]:
    """Frame every item of ``events`` as one Server-Sent Event, lazily (nothing is read ahead).
    ``done``: a last event's data after the others (OpenAI-style clients wait for ``[DONE]``)."""
    for item in events:
        yield format_event(item)
    if done is not None:
        yield format_event(done)


def is_stream(value: Any) -> bool:
    """True for what the server streams: an iterator that is not one of the types sent whole
    (``bytes``, ``str``, lists, tuples, dicts; numpy arrays are not iterators)."""
    return not isinstance(value, (bytes, str, bytearray, memoryview, dict, list, tuple)) and (
        hasattr(value, "__next__") and hasattr(value, "__iter__"))


def _data_lines(data: Any) -> str:
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8")
    elif not isinstance(data, str):
        data = json.dumps(data, separators=(",", ":"))
    return "".join(f"data: {line}\n" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def _one_line(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {name} field cannot contain a line break")
    return value
