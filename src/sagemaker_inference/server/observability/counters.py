"""The plain numbers behind every metric, updated on the request path, read on a scrape.

Theory: the frontend is one thread, so a counter is an int attribute and nothing needs a lock.
Each model's ``ModelCounters`` hangs off its ``WorkerGroup`` and the request's ``Exchange``
points at it, so the request path never looks a label up by string: a response adds one to a
dict keyed by its status code and observes one histogram (a bisect into a short tuple). A
model's counters go away with its group, so its series disappear when it is unloaded.

Deltas from the workers (time inside ``handle``, the handler's MMS metrics) are added when a
``WorkerStats`` arrives; resident memory and CPU time are kept per worker by ``Worker`` itself.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from sagemaker_inference.server.workers.protocol import DURATION_BUCKETS, WorkerStats

_monotonic = time.monotonic
_bisect = bisect_left

BATCH_SIZE_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
MAX_HANDLER_METRICS = 256  # (name, unit) pairs per model; more are dropped (and counted)


class Histogram:
    """Counts per bucket (not cumulative; one more bucket than bounds, for +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add(self, counts: Sequence[int], total: float) -> None:
        """Merge counts taken over the same bounds elsewhere (a worker's)."""
        if len(counts) == len(self.counts):
            for i, count in enumerate(counts):
                self.counts[i] += count
            self.sum += total

    @property
    def count(self) -> int:
        return sum(self.counts)

    def snapshot(self) -> tuple[list[int], float]:
        return list(self.counts), self.sum


class ModelCounters:
    """Everything counted for one model. ``finished`` and ``dispatched`` run per request."""

    __slots__ = ("model", "statuses", "request", "queue", "handler", "batch", "restarts", "load_seconds",
                 "handler_metrics", "dropped_metrics", "streams", "stream_chunks", "sessions_opened", "sessions")

    def __init__(self, model: str = "") -> None:
        self.model = model  # for log lines about a request of this model
        self.statuses: dict[int, int] = {}
        self.request = Histogram(DURATION_BUCKETS)
        self.queue = Histogram(DURATION_BUCKETS)
        self.handler = Histogram(DURATION_BUCKETS)
        self.batch = Histogram(BATCH_SIZE_BUCKETS)
        self.restarts = 0
        self.load_seconds: float | None = None
        self.handler_metrics: dict[tuple[str, str], float] = {}
        self.dropped_metrics = 0
        self.streams: dict[str, int] = {}  # how streamed responses ended -> count
        self.stream_chunks = 0
        self.sessions_opened = 0  # bidirectional sessions
        self.sessions: dict[str, int] = {}  # how they ended -> count

    # The two methods below run per request: Histogram.observe is inlined (a method call is a
    # good part of their cost; see bench/metrics_path.py).

    def finished(self, status: int, arrived: float) -> None:
        """A response for this model is ready to be written (``arrived``: ``time.monotonic()``)."""
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        histogram = self.request
        value = _monotonic() - arrived
        histogram.counts[_bisect(histogram.bounds, value)] += 1
        histogram.sum += value

    def dispatched(self, items: Sequence[Any], now: float) -> None:
        """A batch of ``items`` (with ``.arrived``) is being sent to a worker at ``now``."""
        size = len(items)
        batch = self.batch
        batch.counts[0 if size == 1 else _bisect(batch.bounds, size)] += 1  # BATCH_SIZE_BUCKETS[0] is 1
        batch.sum += size
        queue = self.queue
        counts, bounds = queue.counts, queue.bounds
        for item in items:
            value = now - item.arrived
            counts[_bisect(bounds, value)] += 1
            queue.sum += value

    # Channels (workers/streams.py): once per stream or session, never per chunk or message.

    def stream_ended(self, outcome: str, chunks: int) -> None:
        self.streams[outcome] = self.streams.get(outcome, 0) + 1
        self.stream_chunks += chunks

    def session_opened(self) -> None:
        self.sessions_opened += 1

    def session_ended(self, outcome: str) -> None:
        self.sessions[outcome] = self.sessions.get(outcome, 0) + 1

    def add_worker_stats(self, stats: WorkerStats) -> None:
        if stats.handle_calls:
            self.handler.add(stats.handle_buckets, stats.handle_seconds)
        metrics = self.handler_metrics
        for metric in stats.metrics:
            key = (metric.name, metric.unit)
            if key not in metrics and len(metrics) >= MAX_HANDLER_METRICS:
                self.dropped_metrics += 1
                continue
            metrics[key] = metrics.get(key, 0.0) + metric.value if metric.counter else metric.value


class ServerCounters:
    """What belongs to no model: inference requests answered before a model was found (400 no
    model name, 404 unknown model, 503 not ready). Labelled ``model=""``: an unknown name sent by
    a client must never become a label (unbounded cardinality)."""

    __slots__ = ("unrouted",)

    def __init__(self) -> None:
        self.unrouted: dict[int, int] = {}

    def refused(self, status: int) -> None:
        self.unrouted[status] = self.unrouted.get(status, 0) + 1
