"""What a worker counts about itself for the frontend's metrics, between two ``StatsRequest``.

Per batch: one clock read either side of ``handle`` and a bisect into a list of ints. The
handler's MMS metrics (``context.metrics.add_time(...)``) are folded in only for batches that
recorded some, and the number of distinct (name, unit) pairs is capped: a handler naming a metric
after each request id must not grow the worker's memory or the frontend's scrape.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from sagemaker_inference.server.workers import protocol as p

MAX_HANDLER_METRICS = 64

try:
    _PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):  # pragma: no cover - not Linux
    _PAGE_SIZE = 4096


def resident_bytes() -> int:
    """This process's resident set size now (Linux ``/proc``), else its peak (``getrusage``)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class StatsRecorder:
    """Accumulates the deltas of one ``WorkerStats``; ``take`` hands them over and starts again."""

    __slots__ = ("calls", "seconds", "buckets", "metrics", "dropped")

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(p.DURATION_BUCKETS) + 1)
        self.metrics: dict[tuple[str, str], p.HandlerMetric] = {}
        self.dropped = 0  # metrics refused by the cap, ever (the worker logs the first)

    def observe(self, seconds: float) -> None:
        """One ``handle`` call that took ``seconds``."""
        self.calls += 1
        self.seconds += seconds
        self.buckets[bisect_left(p.DURATION_BUCKETS, seconds)] += 1

    def record(self, store: Iterable[Any]) -> None:
        """Fold in a batch's ``MetricsStore.store`` (``Metric`` objects): counters add up, the other
        kinds keep their last value. Values that are not numbers are skipped."""
        for metric in store:
            try:
                value = float(metric.value)
            except (TypeError, ValueError):
                continue
            key = (str(metric.name), str(metric.unit or ""))
            current = self.metrics.get(key)
            counter = metric.metric_method == "counter"
            if current is None:
                if len(self.metrics) >= MAX_HANDLER_METRICS:
                    self.dropped += 1
                    continue
                self.metrics[key] = p.HandlerMetric(key[0], key[1], value, counter)
            elif counter:
                current.value += value
            else:
                current.value = value

    def take(self) -> p.WorkerStats:
        stats = p.WorkerStats(resident_bytes(), cpu_seconds(), self.calls, self.seconds, self.buckets,
                              list(self.metrics.values()))
        self.calls, self.seconds = 0, 0.0
        self.buckets = [0] * (len(p.DURATION_BUCKETS) + 1)
        # Counters restart from zero (they travel as deltas); other values are resent only when set again.
        self.metrics = {}
        return stats
