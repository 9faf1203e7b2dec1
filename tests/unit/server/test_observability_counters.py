"""The plain counters behind the metrics, and the worker's stats recorder: real inputs in,
numbers out."""

from __future__ import annotations

from sagemaker_inference.context import MetricsStore
from sagemaker_inference.server.observability.counters import Histogram, ModelCounters
from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.server.workers.stats import StatsRecorder, cpu_seconds, resident_bytes


def test_histogram_buckets_are_upper_bounds_inclusive():
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 1]
    assert histogram.count == 5
    assert histogram.sum == 0.05 + 0.1 + 0.5 + 1.0 + 7.0


def test_histogram_ignores_counts_over_other_bounds():
    histogram = Histogram((0.1, 1.0))
    histogram.add([1, 2, 3], 4.0)
    histogram.add([1, 2], 9.0)  # not ours: refused rather than misattributed
    assert (histogram.counts, histogram.sum) == ([1, 2, 3], 4.0)


class _Item:
    def __init__(self, arrived: float):
        self.arrived = arrived


def test_model_counters_per_request_and_per_batch():
    counters = ModelCounters()
    counters.finished(200, 0.0)
    counters.finished(200, 0.0)
    counters.finished(404, 0.0)
    assert counters.statuses == {200: 2, 404: 1}
    assert counters.request.count == 3
    counters.dispatched([_Item(10.0), _Item(10.5)], 11.0)
    assert counters.batch.counts[1] == 1  # a batch of 2 lands in the le=2 bucket
    assert counters.queue.count == 2 and counters.queue.sum == 1.5


def _store(*records: tuple[str, str, float]) -> MetricsStore:
    store = MetricsStore({0: "id-0"}, "model")
    for kind, name, value in records:
        if kind == "counter":
            store.add_counter(name, value)
        elif kind == "time":
            store.add_time(name, value)
        else:
            store.add_size(name, value)
    return store


def test_recorder_sums_counters_and_keeps_last_values():
    recorder = StatsRecorder()
    recorder.record(_store(("counter", "Hits", 1), ("time", "Latency", 5)).store)
    recorder.record(_store(("counter", "Hits", 2), ("time", "Latency", 7), ("size", "Input", 1.5)).store)
    recorder.observe(0.002)
    stats = recorder.take()
    assert stats.handle_calls == 1 and stats.handle_seconds == 0.002
    assert sum(stats.handle_buckets) == 1
    assert {(m.name, m.unit): (m.value, m.counter) for m in stats.metrics} == {
        ("Hits", "Count"): (3.0, True), ("Latency", "Milliseconds"): (7.0, False), ("Input", "Megabytes"): (1.5, False)}
    assert stats.rss_bytes > 0 and stats.cpu_seconds > 0
    again = recorder.take()  # deltas: nothing new since the last take
    assert (again.handle_calls, again.metrics, sum(again.handle_buckets)) == (0, [], 0)


def test_recorder_caps_distinct_names_and_skips_non_numbers():
    recorder = StatsRecorder()
    store = MetricsStore({0: "id-0"}, "model")
    for i in range(200):
        store.add_metric(f"per-request-{i}", i)
    store.add_metric("text", "not a number")
    recorder.record(store.store)
    assert len(recorder.take().metrics) == 64
    assert recorder.dropped == 200 - 64


def test_frontend_adds_worker_deltas():
    counters = ModelCounters()
    buckets = [0] * (len(p.DURATION_BUCKETS) + 1)
    buckets[3] = 2
    stats = p.WorkerStats(1, 1.0, 2, 0.008, buckets, [p.HandlerMetric("Hits", "Count", 2, True),
                                                       p.HandlerMetric("Latency", "Milliseconds", 5.0)])
    counters.add_worker_stats(stats)
    counters.add_worker_stats(p.WorkerStats(1, 1.0, 0, 0.0, (), [p.HandlerMetric("Hits", "Count", 3, True),
                                                                  p.HandlerMetric("Latency", "Milliseconds", 9.0)]))
    assert counters.handler.count == 2
    assert counters.handler_metrics == {("Hits", "Count"): 5.0, ("Latency", "Milliseconds"): 9.0}


def test_process_figures():
    assert resident_bytes() > 1 << 20
    assert cpu_seconds() > 0
