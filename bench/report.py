"""Side-by-side tables of runs and their JSON form. Ratios are ours / MMS (or ours / before): above 1 is better for
req/s, below 1 is better for latency, CPU, startup and memory."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from harness import Run, Settings

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1e6


def _num(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}{unit}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs or math.isnan(ours) or math.isnan(theirs):
        return "-"
    return f"{ours / theirs:.2f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        # first column left-aligned (names), the rest right-aligned (numbers)
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    head = line(header)
    return "\n".join([head, "-" * len(head), *(line(r) for r in rows)])


def _pair(runs: Sequence[Run], workload: str) -> tuple[Run | None, Run | None]:
    """(ours, what it is compared with): MMS when it ran, else ``before`` (our own earlier tree)."""
    by_stack = {r.stack: r for r in runs if r.workload == workload}
    return by_stack.get("ours"), by_stack.get("mms") or by_stack.get("before")


def load_table(runs: Sequence[Run]) -> str:
    """One row per workload, stack and connection count; ratio columns on the 'ours' rows."""
    header = ["workload", "stack", "conns", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "CPU %", "wrk %", "others %"]
    header += ["errors", "req/s ×", "p99 ×", "CPU/req ×"]
    rows = []
    for run in runs:
        ours, mms = _pair(runs, run.workload)
        for level in run.levels:
            other = mms.level(level.connections) if mms is not None and run is ours else None
            rows.append(
                [
                    run.workload,
                    run.stack,
                    str(level.connections),
                    _num(level.rps),
                    _num(level.p50_ms, 2),
                    _num(level.p99_ms, 2),
                    _num(level.cpu_us_per_request),
                    _num(level.cpu_percent),
                    _num(level.wrk_percent),
                    _num(level.others_percent),
                    str(level.errors),
                    _ratio(level.rps, other.rps) if other else "",
                    _ratio(level.p99_ms, other.p99_ms) if other else "",
                    _ratio(level.cpu_us_per_request, other.cpu_us_per_request) if other else "",
                ]
            )
    return table(header, rows)


def summary_table(runs: Sequence[Run]) -> str:
    """Startup and memory per workload and stack."""
    header = ["workload", "stack", "startup s", "idle RSS MB", "idle PSS MB", "loaded RSS MB", "soak growth %"]
    header += ["procs", "startup ×", "idle RSS ×"]
    rows = []
    for run in runs:
        ours, mms = _pair(runs, run.workload)
        other = mms if run is ours else None
        idle, loaded = run.idle, run.after_load
        rows.append(
            [
                run.workload,
                run.stack,
                _num(run.startup_s, 2),
                _num(idle.rss / MB if idle else None),
                _num(idle.pss / MB if idle else None),
                _num(loaded.rss / MB if loaded else None),
                _num(run.soak.growth_percent, 1) if run.soak else "-",
                str(idle.processes) if idle else "-",
                _ratio(run.startup_s, other.startup_s) if other else "",
                _ratio(idle.rss, other.idle.rss) if other and idle and other.idle else "",
            ]
        )
    return table(header, rows)


def problems(runs: Sequence[Run]) -> str:
    lines = []
    for run in runs:
        if run.error:
            lines.append(f"{run.stack}/{run.workload}: FAILED: {run.error}")
        lines += [f"{run.stack}/{run.workload}: {note}" for note in run.notes]
    return "\n".join(lines)


def render(runs: Sequence[Run]) -> str:
    parts = [load_table(runs), "", summary_table(runs)]
    extra = problems(runs)
    if extra:
        parts += ["", extra]
    return "\n".join(parts)


def machine() -> dict[str, object]:
    return {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "loadavg": os.getloadavg(),
        "platform": platform.platform(),
    }


def write_json(name: str, runs: Sequence[object], settings: Settings, before: dict[str, object]) -> Path:
    """Write the runs (dataclasses) with the settings and the machine's state before and after."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    document = {
        "machine_before": before,
        "machine_after": machine(),
        "settings": dataclasses.asdict(settings),
        "runs": [dataclasses.asdict(r) for r in runs],  # type: ignore[call-overload]
    }
    path.write_text(json.dumps(document, indent=2, default=str))
    return path
