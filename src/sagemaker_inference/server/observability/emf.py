"""CloudWatch Embedded Metric Format: every interval, one JSON line per model on stdout.

CloudWatch Logs turns such a line into metrics with no agent (SageMaker ships a container's
stdout to CloudWatch Logs). Each line covers the interval since the previous one: counts are
deltas, latencies are percentiles estimated from the histogram buckets filled in that interval
(linear within a bucket, as PromQL's ``histogram_quantile``), gauges are read at emission.
A metric with no data in the interval (no requests: no latency) is left out of the line rather
than sent as zero. The dimension is ``ModelName``, one value per loaded model: bounded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sagemaker_inference.server.observability.counters import Histogram, ModelCounters

if TYPE_CHECKING:
    from sagemaker_inference.server.registry import Model

_RESERVED = {"_aws", "ModelName"}
PERCENTILES = ((50, 0.5), (90, 0.9), (99, 0.99))
MAX_HANDLER_METRICS = 50  # an EMF directive holds at most 100 metrics; ours take the first ~30
# MMS unit names (context.py) are CloudWatch's, but for MMS's "unit" placeholder.
_CLOUDWATCH_UNITS = {"Milliseconds", "Seconds", "Percent", "Count", "Megabytes", "Gigabytes", "Kilobytes", "Bytes"}


def quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The ``q`` quantile of observations counted per bucket (``counts`` has one more entry than
    ``bounds``, for +Inf); None when there are none. Beyond the last bound: the last bound."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i == len(bounds):
                return float(bounds[-1])
            low = bounds[i - 1] if i else 0.0
            return low + (bounds[i] - low) * (rank - seen) / count
        seen += count
    return float(bounds[-1])


class _Snapshot:
    """What a model's counters said at the previous line."""

    __slots__ = ("counters", "statuses", "request", "queue", "handler", "batch", "restarts")

    def __init__(self, counters: ModelCounters | None = None):
        self.counters = counters
        if counters is None:
            self.statuses: dict[int, int] = {}
            self.request = self.queue = self.handler = self.batch = None
            self.restarts = 0
            return
        self.statuses = dict(counters.statuses)
        self.request, self.queue = counters.request.snapshot(), counters.queue.snapshot()
        self.handler, self.batch = counters.handler.snapshot(), counters.batch.snapshot()
        self.restarts = counters.restarts


def _delta(now: Histogram, before: tuple[list[int], float] | None) -> tuple[list[int], float]:
    counts, total = now.snapshot()
    if before is None:
        return counts, total
    return [a - b for a, b in zip(counts, before[0])], total - before[1]


class EmfReporter:
    """Builds the lines; keeps the previous snapshot of each model to report deltas."""

    def __init__(self, namespace: str):
        self.namespace = namespace
        self._previous: dict[str, _Snapshot] = {}

    def lines(self, models: Sequence[Model], timestamp_ms: int) -> list[str]:
        previous, self._previous = self._previous, {}
        lines = []
        for model in models:
            counters = model.group.counters
            if counters is None:
                continue
            before = previous.get(model.name)
            if before is None or before.counters is not counters:  # new, or reloaded: count from zero
                before = _Snapshot()
            lines.append(json.dumps(self.document(model, counters, before, timestamp_ms), separators=(",", ":")))
            self._previous[model.name] = _Snapshot(counters)
        return lines

    def document(self, model: Model, counters: ModelCounters, before: _Snapshot, timestamp_ms: int) -> dict[str, Any]:
        values: dict[str, tuple[float, str]] = {}
        statuses = {s: n - before.statuses.get(s, 0) for s, n in counters.statuses.items()}
        values["Invocations"] = (sum(statuses.values()), "Count")
        for klass, name in ((2, "Invocation2XX"), (4, "Invocation4XXErrors"), (5, "Invocation5XXErrors")):
            values[name] = (sum(n for s, n in statuses.items() if s // 100 == klass), "Count")
        for name, histogram, snapshot in (("RequestLatency", counters.request, before.request),
                                          ("QueueLatency", counters.queue, before.queue),
                                          ("HandlerLatency", counters.handler, before.handler)):
            counts, total = _delta(histogram, snapshot)
            for percentile, q in PERCENTILES:
                value = quantile(q, histogram.bounds, counts)
                if value is not None:
                    values[f"{name}P{percentile}"] = (round(value * 1000, 3), "Milliseconds")
            if sum(counts):
                values[f"{name}Average"] = (round(total / sum(counts) * 1000, 3), "Milliseconds")
        counts, total = _delta(counters.batch, before.batch)
        if sum(counts):
            values["BatchSizeAverage"] = (round(total / sum(counts), 3), "None")
        values["WorkerRestarts"] = (counters.restarts - before.restarts, "Count")
        group = model.group
        values["InflightRequests"] = (group.pending, "Count")
        values["QueueDepth"] = (len(group.queue), "Count")
        values["ReadyWorkers"] = (sum(1 for w in group.workers if w.state.value == "READY"), "Count")
        values["WorkerMemory"] = (sum(w.rss_bytes for w in group.workers), "Bytes")
        for (name, unit), value in list(counters.handler_metrics.items())[:MAX_HANDLER_METRICS]:
            if name in _RESERVED:
                continue
            values.setdefault(name, (value, unit if unit in _CLOUDWATCH_UNITS else "None"))
        document: dict[str, Any] = {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
            "Namespace": self.namespace, "Dimensions": [["ModelName"]],
            "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()]}]},
            "ModelName": model.name}
        document.update((name, value) for name, (value, _) in values.items())
        return document
