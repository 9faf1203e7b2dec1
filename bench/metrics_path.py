"""Nanoseconds the metrics add to one request in the frontend, in process: what
``SAGEMAKER_METRICS`` switches on, next to what it switches off.

Per request the frontend calls ``ModelCounters.finished`` (status count + request histogram)
and, per batch, ``ModelCounters.dispatched`` (batch size + queue histogram); with metrics off
both are one ``None`` check. The whole-server figure is ``compare.py --stacks
ours,ours-nometrics``; this one is free of the machine's noise. Also times one scrape render.

    python bench/metrics_path.py [--number N]
"""

from __future__ import annotations

import argparse
import time
import timeit

from sagemaker_inference.server.observability.counters import ModelCounters


class _Item:
    __slots__ = ("arrived",)

    def __init__(self) -> None:
        self.arrived = time.monotonic()


def per_request_ns(number: int) -> dict[str, float]:
    counters: ModelCounters | None = ModelCounters("model")
    off: ModelCounters | None = None
    items = [_Item()]
    arrived = time.monotonic()

    def with_metrics() -> None:
        c = counters
        if c is not None:
            c.dispatched(items, time.monotonic())
            c.finished(200, arrived)

    def without() -> None:
        c = off
        if c is not None:
            c.dispatched(items, time.monotonic())
            c.finished(200, arrived)

    results = {}
    for name, fn in (("metrics on", with_metrics), ("metrics off", without)):
        best = min(timeit.repeat(fn, number=number, repeat=5))
        results[name] = best / number * 1e9
    return results


def scrape_ms() -> float:
    """One render of a scrape for 10 models' worth of series (prometheus_client's text format)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import HistogramMetricFamily

    from sagemaker_inference.server.observability.prometheus import _buckets

    counters = ModelCounters("m")
    for i in range(1000):
        counters.finished(200 + (i % 3) * 100, time.monotonic())

    class Collector:
        def collect(self):  # type: ignore[no-untyped-def]
            for name in ("request", "queue", "handler", "batch"):
                family = HistogramMetricFamily(f"x_{name}", "x", labels=("model",))
                for m in range(10):
                    histogram = getattr(counters, name)
                    family.add_metric((f"model-{m}",), _buckets(histogram), histogram.sum)
                yield family

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    return min(timeit.repeat(lambda: generate_latest(registry), number=20, repeat=3)) / 20 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    results = per_request_ns(args.number)
    print(f"{'per request (dispatch + response)':<36} {'ns':>8}")
    for name, ns in results.items():
        print(f"{name:<36} {ns:>8.0f}")
    print(f"{'added by metrics':<36} {results['metrics on'] - results['metrics off']:>8.0f}")
    print(f"{'scrape render, 10 models (ms)':<36} {scrape_ms():>8.2f}")


if __name__ == "__main__":
    main()
