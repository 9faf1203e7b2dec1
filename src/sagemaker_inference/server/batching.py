"""When to cut a batch. Pure: the worker pool asks, this module answers.

MMS semantics: a batch is sent as soon as it holds ``batch_size`` requests, or when
``max_batch_delay`` ms have passed since its first request arrived, whichever comes first.
``batch_size == 1`` never waits. The caller arms a timer only when told to wait, so nothing wakes
up while the queue is empty, and a lone request waits at most ``max_batch_delay``.
"""

from __future__ import annotations

from typing import NamedTuple


class Cut(NamedTuple):
    take: int  # how many queued requests to send now (0 = none)
    wait: float | None  # if nothing is sent: seconds until the oldest request's delay runs out


def decide(queued: int, batch_size: int, oldest_age: float, max_delay: float) -> Cut:
    """``oldest_age`` and ``max_delay`` in seconds."""
    if queued <= 0:
        return Cut(0, None)
    if queued >= batch_size or batch_size == 1 or oldest_age >= max_delay:
        return Cut(min(queued, batch_size), None)
    return Cut(0, max_delay - oldest_age)

