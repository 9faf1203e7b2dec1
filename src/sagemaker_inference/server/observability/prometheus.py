"""The Prometheus view of the counters: a custom ``prometheus_client`` collector, run on a scrape.

Nothing here runs per request. A scrape walks the registry's models (only the models the server
holds: an unloaded model's series are gone), reads their counters and their workers' last
``WorkerStats``, and lets ``prometheus_client`` write the exposition format (text or
OpenMetrics, as the scraper's ``Accept`` asks). ``prometheus_client`` is imported on the first
scrape, so a server nobody scrapes never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sagemaker_inference.server.observability.counters import Histogram, ModelCounters
from sagemaker_inference.server.workers.stats import cpu_seconds, resident_bytes
from sagemaker_inference.server.workers.streams import Stream
from sagemaker_inference.server.workers.worker import WorkerState

if TYPE_CHECKING:
    from sagemaker_inference.server.app import App
    from sagemaker_inference.server.registry import Model

PREFIX = "sagemaker_inference_"
WORKER_STATES = tuple(state.value for state in WorkerState)


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs, ``+Inf`` last, as ``HistogramMetricFamily`` takes them."""
    pairs, total = [], 0
    for bound, count in zip((*histogram.bounds, float("inf")), histogram.counts):
        total += count
        pairs.append(("+Inf" if bound == float("inf") else _le(bound), float(total)))
    return pairs


def _le(bound: float) -> str:
    return repr(float(bound))


class ServerCollector:
    """Yields every ``sagemaker_inference_*`` family from the app's state."""

    def __init__(self, app: App):
        self.app = app

    def describe(self) -> list[Any]:
        return []  # families are built on each collect; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        models = [m for m in self.app.registry.models.values() if m.group.counters is not None]
        requests = CounterMetricFamily(PREFIX + "requests", "Inference requests answered, by model and HTTP status.",
                                       labels=("model", "status"))
        server = self.app.counters
        if server is not None:
            for status, count in sorted(server.unrouted.items()):
                requests.add_metric(("", str(status)), count)
        for model in models:
            counters = _counters(model)
            for status, count in sorted(counters.statuses.items()):
                requests.add_metric((model.name, str(status)), count)
        yield requests

        for name, attribute, text in (
                ("request_duration_seconds", "request", "Seconds from a request's arrival to its response."),
                ("queue_duration_seconds", "queue", "Seconds from a request's arrival until it was sent to a worker."),
                ("handler_duration_seconds", "handler", "Seconds a worker spent inside handle() per batch."),
                ("batch_size", "batch", "Requests per batch sent to a worker.")):
            family = HistogramMetricFamily(PREFIX + name, text, labels=("model",))
            for model in models:
                histogram = getattr(_counters(model), attribute)
                family.add_metric((model.name,), _buckets(histogram), histogram.sum)
            yield family

        yield from self._model_gauges(models, GaugeMetricFamily, CounterMetricFamily)
        yield from self._channels(models, GaugeMetricFamily, CounterMetricFamily)
        yield from self._processes(models, GaugeMetricFamily, CounterMetricFamily)

    def _model_gauges(self, models: Sequence[Model], gauge: Any, counter: Any) -> Iterator[Any]:
        inflight = gauge(PREFIX + "inflight_requests", "Requests accepted and not answered yet (queued or running).",
                         labels=("model",))
        depth = gauge(PREFIX + "queue_depth", "Requests waiting for a worker.", labels=("model",))
        restarts = counter(PREFIX + "worker_restarts", "Workers replaced after dying or timing out.",
                           labels=("model",))
        workers = gauge(PREFIX + "workers", "Worker processes by state.", labels=("model", "state"))
        load = gauge(PREFIX + "model_load_duration_seconds", "Seconds the last load of the model took.",
                     labels=("model",))
        handler = gauge(PREFIX + "handler_metric", "Metrics the handler recorded with context.metrics: counters "
                        "summed, other kinds the last value recorded.", labels=("model", "name", "unit"))
        for model in models:
            group, counters = model.group, _counters(model)
            inflight.add_metric((model.name,), group.pending)
            depth.add_metric((model.name,), len(group.queue))
            restarts.add_metric((model.name,), counters.restarts)
            states = dict.fromkeys(WORKER_STATES, 0)
            for worker in group.workers:
                states[worker.state.value] += 1
            for state, count in states.items():
                workers.add_metric((model.name, state), count)
            if counters.load_seconds is not None:
                load.add_metric((model.name,), counters.load_seconds)
            for (name, unit), value in sorted(counters.handler_metrics.items()):
                handler.add_metric((model.name, name, unit), value)
        loaded = gauge(PREFIX + "models_loaded", "Models loaded and ready to serve.")
        loaded.add_metric((), sum(1 for m in models if m.state.value == "READY"))
        yield from (inflight, depth, restarts, workers, load, handler, loaded)

    def _channels(self, models: Sequence[Model], gauge: Any, counter: Any) -> Iterator[Any]:
        """Streamed responses, bidirectional sessions, stateful (sticky) sessions."""
        streams = counter(PREFIX + "streams", "Streamed responses that ended, by how: completed, failed, "
                          "client_gone, timeout, worker_died.", labels=("model", "outcome"))
        chunks = counter(PREFIX + "stream_chunks", "Chunks of streamed responses that ended.", labels=("model",))
        active = gauge(PREFIX + "streams_active", "Streamed responses under way.", labels=("model",))
        sessions = counter(PREFIX + "bidi_sessions", "Bidirectional sessions that ended, by how: closed_by_client, "
                           "closed_by_model, failed, worker_died.", labels=("model", "outcome"))
        open_sessions = gauge(PREFIX + "bidi_sessions_active", "Bidirectional sessions open.", labels=("model",))
        sticky = gauge(PREFIX + "stateful_sessions_active", "Stateful (sticky) sessions open.", labels=("model",))
        for model in models:
            counters, group = _counters(model), model.group
            for outcome, count in sorted(counters.streams.items()):
                streams.add_metric((model.name, outcome), count)
            chunks.add_metric((model.name,), counters.stream_chunks)
            active.add_metric((model.name,), sum(1 for w in group.workers for c in w.channels.values()
                                                 if isinstance(c, Stream)))
            for outcome, count in sorted(counters.sessions.items()):
                sessions.add_metric((model.name, outcome), count)
            open_sessions.add_metric((model.name,), sum(w.sessions for w in group.workers))
            sticky.add_metric((model.name,), len(group.sessions))
        yield from (streams, chunks, active, sessions, open_sessions, sticky)

    def _processes(self, models: Sequence[Model], gauge: Any, counter: Any) -> Iterator[Any]:
        labels = ("process", "model", "worker")
        memory = gauge(PREFIX + "memory_bytes", "Resident memory of the frontend and of each worker process.",
                       labels=labels)
        cpu = counter(PREFIX + "cpu_seconds", "CPU time (user + system) of the frontend and of each worker process.",
                      labels=labels)
        memory.add_metric(("frontend", "", ""), resident_bytes())
        cpu.add_metric(("frontend", "", ""), cpu_seconds())
        for model in models:
            for worker in model.group.workers:
                if worker.pid and worker.state == WorkerState.READY and worker.rss_bytes:
                    key = ("worker", model.name, str(worker.index))
                    memory.add_metric(key, worker.rss_bytes)
                    cpu.add_metric(key, worker.cpu_seconds)
        yield memory
        yield cpu


def _counters(model: Model) -> ModelCounters:
    counters = model.group.counters
    assert counters is not None
    return counters


class Exposition:
    """The app's scrape: a ``prometheus_client`` registry holding our collector and the standard
    process and platform collectors of the frontend."""

    def __init__(self, app: App):
        from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ServerCollector(app))  # type: ignore[arg-type]
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def render(self, accept: bytes | None) -> tuple[bytes, str]:
        """The body and its content type, in the format ``accept`` prefers."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder((accept or b"").decode("latin-1"))
        return encoder(self.registry), content_type
