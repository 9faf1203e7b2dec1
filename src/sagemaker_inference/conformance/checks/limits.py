"""The payload limit (at the declared size, refused without buffering) and the timeouts for stalled clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from sagemaker_inference.conformance import wire
from sagemaker_inference.conformance.probe import Probe
from sagemaker_inference.conformance.registry import Result, check

MIB = 1024 * 1024


def _padded_json(size: int) -> bytes:
    """A valid JSON body of exactly ``size`` bytes (a row of numbers padded with spaces)."""
    core = b"[[1.0, 2.0, 3.0, 4.0]]"
    return core + b" " * (size - len(core))


@check("limits.at-declared-size", needs=("single",), budget=60,
       about="a body of exactly the declared limit is read and answered (not 413)")
def at_limit(probe: Probe) -> Iterator[Result]:
    size = probe.max_payload
    response = probe.invoke(_padded_json(size), "application/json", timeout=max(probe.timeout, 30.0))
    yield Result("limits.at-declared-size", response.status != 413 and response.status < 500,
                 f"{size} bytes (limit from {probe.max_payload_source}): {response.status} in "
                 f"{response.elapsed:.2f} s", size, "bytes")


@check("limits.over-declared-size", needs=("single",), budget=30,
       about="a request declaring more than the limit gets 413 before its body is sent (nothing buffered)")
def over_limit(probe: Probe) -> Iterator[Result]:
    declared = (probe.max_payload // MIB + 1) * MIB + MIB
    head = wire.request("POST", "/invocations", headers={"Content-Type": "application/json",
                                                         "Content-Length": str(declared)}, length=False)
    with probe.connect() as conn:
        conn.send(head)
        try:
            response = conn.read_response(timeout=5.0)
            status, took = response.status, response.elapsed
        except wire.NoResponse as exc:
            status, took = 0, 5.0
            why = exc.why
    detail = (f"Content-Length {declared} (limit {probe.max_payload}), no body sent: "
              + (f"{status} after {took * 1000:.0f} ms" if status else f"no answer ({why}): the server waits "
                 "for the body, so it would buffer it"))
    yield Result("limits.over-declared-size", status == 413, detail, took * 1000, "ms")


@check("limits.chunked-over-size", needs=("single",), budget=60,
       about="a chunked body growing past the limit gets 413 while it streams, not after it was buffered")
def chunked_over(probe: Probe) -> Iterator[Result]:
    head = wire.request("POST", "/invocations", headers={"Content-Type": "application/json",
                                                         "Transfer-Encoding": "chunked"}, length=False)
    chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
    total = probe.max_payload + 4 * MIB
    sent, stopped = 0, ""
    with probe.connect(timeout=10.0) as conn:
        conn.send(head + b"1\r\n[\r\n")
        while sent < total:
            if not conn.send(chunk):
                stopped = f"the server stopped reading after {sent} bytes ({conn.send_error})"
                break
            sent += 65536
        try:
            status = conn.read_response(timeout=5.0).status
        except wire.NoResponse as exc:
            status = 0
            stopped = stopped or f"no answer ({exc.why})"
    yield Result("limits.chunked-over-size", status == 413,
                 f"streamed {sent} bytes (limit {probe.max_payload}), answer {status or 'none'}"
                 + (f"; {stopped}" if stopped else ""), sent, "bytes")


@check("timeouts.stalled-client-isolated", budget=30,
       about="clients stalled mid-head or mid-body do not delay anyone else")
def stalled_isolated(probe: Probe) -> Iterator[Result]:
    stalled = []
    try:
        for i in range(20):
            conn = probe.connect()
            conn.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[1" if i % 2
                      else b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Partial: ")
            stalled.append(conn)
        times = [probe.get("/ping").elapsed * 1000 for _ in range(10)]
    finally:
        for conn in stalled:
            conn.close()
    yield Result("timeouts.stalled-client-isolated", max(times) < 2000,
                 f"20 stalled clients; /ping worst {max(times):.1f} ms", max(times), "ms")


def _time_to_close(probe: Probe, opening: bytes, trickle: bytes, limit: float, out: dict[str, tuple[float, str]],
                   key: str) -> None:
    """Send ``opening``, then one ``trickle`` byte per second; record when (and how) the server ends it."""
    started = time.monotonic()
    with probe.connect(timeout=limit) as conn:
        conn.send(opening)
        for byte in trickle * int(limit):
            try:
                response = conn.read_response(timeout=1.0)
                out[key] = (time.monotonic() - started, f"answered {response.status}")
                return
            except wire.NoResponse as exc:
                if exc.why != "timeout":
                    out[key] = (time.monotonic() - started, f"closed ({exc.why})")
                    return
            if not conn.send(bytes([byte])):
                out[key] = (time.monotonic() - started, f"closed ({conn.send_error})")
                return
    out[key] = (limit, "still open")


@check("timeouts.slow-headers", "timeouts.slow-body", quick=False, needs=("single",), budget=200,
       about="a client trickling its head or its body one byte a second is cut off (408 or close) in bounded time")
def slow_clients(probe: Probe) -> Iterator[Result]:
    limit = 150.0
    out: dict[str, tuple[float, str]] = {}
    threads = [
        threading.Thread(target=_time_to_close, daemon=True, args=(
            probe, b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X", limit, out, "timeouts.slow-headers")),
        threading.Thread(target=_time_to_close, daemon=True, args=(
            probe, probe.invocation(b"", "application/json").replace(b"Content-Length: 0", b"Content-Length: 100000"),
            b" ", limit, out, "timeouts.slow-body")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(limit + 20)
    for name in ("timeouts.slow-headers", "timeouts.slow-body"):
        took, how = out.get(name, (limit, "no result"))
        yield Result(name, how != "still open" and how != "no result" and not how.startswith("answered 5"),
                     f"one byte a second: {how} after {took:.0f} s (limit {limit:.0f} s)", took, "s")
