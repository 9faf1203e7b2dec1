"""Optional soak (``--soak SECONDS``): steady load, errors counted, the server's memory sampled when the kit owns it."""

from __future__ import annotations

import time
from collections.abc import Iterator

from sagemaker_inference.conformance.probe import Probe
from sagemaker_inference.conformance.registry import Result, check
from sagemaker_inference.conformance.traffic import Traffic

GROWTH_LIMIT = 0.10


@check("soak.errors", needs=("soak", "single", "url"), budget=3600,
       about="under steady load for --soak seconds: no errors")
def soak_remote(probe: Probe) -> Iterator[Result]:
    return soak(probe)


@check("soak.errors", "soak.rss-growth", needs=("soak", "single", "process"), budget=3600,
       about="under steady load for --soak seconds: no errors, memory (RSS) growth of the server under 10 %")
def soak(probe: Probe) -> Iterator[Result]:
    seconds = probe.options.soak
    samples: list[int] = []
    with Traffic(probe, 8) as traffic:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if probe.served is not None:
                samples.append(probe.served.rss_bytes())
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    tally = traffic.stop()
    errors = tally.count("5xx") + tally.lost + tally.hung + tally.refused
    yield Result("soak.errors", errors == 0 and tally.answered > 0,
                 f"{seconds:.0f} s, 8 clients: {tally.summary()}, {tally.refused} connections refused", errors,
                 "errors")
    if probe.served is None:
        return
    if len(samples) < 4:
        yield Result("soak.rss-growth", False, f"only {len(samples)} memory samples: soak longer than 8 s")
        return
    quarter = max(1, len(samples) // 4)
    first, last = sum(samples[:quarter]) / quarter, sum(samples[-quarter:]) / quarter
    growth = (last - first) / first if first else 0.0
    yield Result("soak.rss-growth", growth < GROWTH_LIMIT,
                 f"tree RSS {first / 2**20:.0f} MB (first quarter) -> {last / 2**20:.0f} MB (last quarter): "
                 f"{growth * 100:+.1f} % (limit {GROWTH_LIMIT * 100:.0f} %)", growth * 100, "%")
