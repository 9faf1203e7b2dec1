"""``/ping`` stays fast when the server is busy: at full load, and beside hundreds of slow connections."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from sagemaker_inference.conformance import wire
from sagemaker_inference.conformance.probe import Probe
from sagemaker_inference.conformance.registry import Result, check
from sagemaker_inference.conformance.traffic import Traffic

PING_LIMIT_MS = 2000.0


def _pings(probe: Probe, seconds: float, every: float = 0.1) -> tuple[list[float], list[float], list[str]]:
    """Ping on fresh connections for ``seconds``: (latencies ms, connect times ms, failures)."""
    latencies, connects, failures = [], [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            with probe.connect(timeout=PING_LIMIT_MS / 1000 + 3) as conn:
                connects.append(conn.connect_time * 1000)
                conn.send(wire.request("GET", "/ping"))
                response = conn.read_response()
            if response.status != 200:
                failures.append(str(response.status))
        except (wire.NoResponse, OSError) as exc:
            failures.append(getattr(exc, "why", type(exc).__name__))
        latencies.append((time.monotonic() - started) * 1000)
        time.sleep(every)
    return latencies, connects, failures


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


@check("ping.under-load", "accept.under-load", needs=("single",), budget=60,
       about="/ping answers 200 within 2 s, and connections are accepted within 250 ms, at full load")
def under_load(probe: Probe) -> Iterator[Result]:
    clients, seconds = (8, 4.0) if probe.options.quick else (32, 15.0)
    with Traffic(probe, clients) as traffic:
        time.sleep(0.5)
        latencies, connects, failures = _pings(probe, seconds)
    tally = traffic.stop()
    worst = max(latencies)
    failed_load = tally.count("5xx") + tally.lost + tally.hung
    yield Result("ping.under-load", worst < PING_LIMIT_MS and not failures and failed_load == 0,
                 f"{clients} clients for {seconds:.0f} s ({tally.summary()}); {len(latencies)} pings: p99 "
                 f"{_p99(latencies):.1f} ms, worst {worst:.1f} ms" + (f", failed {failures[:5]}" if failures else ""),
                 worst, "ms")
    worst_connect = max(connects) if connects else float("inf")
    yield Result("accept.under-load", worst_connect < 250.0,
                 f"{len(connects)} connects during the load: worst {worst_connect:.2f} ms (limit 250 ms)",
                 worst_connect, "ms")


@check("ping.beside-slow-connections", budget=90,
       about="/ping answers within 2 s beside 500 connections that trickle their heads")
def beside_slow(probe: Probe) -> Iterator[Result]:
    count = probe.options.slow_connections
    slow: list[wire.Connection] = []
    refused = 0

    def open_one(i: int) -> wire.Connection | None:
        try:
            conn = probe.connect(timeout=5.0)
        except OSError:
            return None
        conn.send(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-%d: " % i)
        return conn

    try:
        with ThreadPoolExecutor(16) as pool:
            for conn in pool.map(open_one, range(count)):
                if conn is None:
                    refused += 1
                else:
                    slow.append(conn)
        for conn in slow[::10]:
            conn.send(b"x")  # still trickling
        latencies, _, failures = _pings(probe, 3.0 if probe.options.quick else 10.0)
    finally:
        for conn in slow:
            conn.close()
    worst = max(latencies)
    yield Result("ping.beside-slow-connections", worst < PING_LIMIT_MS and not failures,
                 f"{len(slow)} slow connections open ({refused} refused); {len(latencies)} pings: p99 "
                 f"{_p99(latencies):.1f} ms, worst {worst:.1f} ms" + (f", failed {failures[:5]}" if failures else ""),
                 worst, "ms")


@check("http.concurrent-requests", needs=("single",), budget=60,
       about="200 concurrent requests on 200 connections are all answered, none with 5xx")
def concurrent(probe: Probe) -> Iterator[Result]:
    content_type, body = probe.sample
    data = probe.invocation(body, content_type)

    def one(_: int) -> str:
        klass, response, why = wire.outcome(probe.host, probe.port, data, max(probe.timeout, 30.0))
        return str(response.status) if response else klass

    with ThreadPoolExecutor(200) as pool:
        answers = list(pool.map(one, range(200)))
    counts = {a: answers.count(a) for a in sorted(set(answers))}
    bad = sum(n for a, n in counts.items() if not a.startswith("2") and a != "503")
    yield Result("http.concurrent-requests", bad == 0,
                 f"200 concurrent POST /invocations: {counts} (503 is allowed back-pressure)", bad, "failed")
