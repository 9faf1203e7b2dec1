"""Checks that own the server process (``--serve``): startup time, kill -9 of a worker, SIGTERM under load.

They run last; ``process.sigterm-drain`` ends the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

from sagemaker_inference.conformance.probe import Probe
from sagemaker_inference.conformance.registry import Result, check
from sagemaker_inference.conformance.served import ServedServer
from sagemaker_inference.conformance.traffic import Traffic

SIGKILL_AFTER = 30.0  # seconds SageMaker waits after SIGTERM before SIGKILL


def _served(probe: Probe) -> ServedServer:
    assert probe.served is not None
    return probe.served


@check("process.startup", needs=("process",), budget=10, about="time from start to /ping 200")
def startup(probe: Probe) -> Iterator[Result]:
    took = _served(probe).startup_seconds or 0.0
    yield Result("process.startup", took < 60.0, f"ready (/ping 200) {took:.2f} s after start (limit 60 s)",
                 took, "s")


@check("process.kill-worker", needs=("process", "single"), budget=90,
       about="kill -9 of a worker under load: only its in-flight requests fail, a new worker replaces it")
def kill_worker(probe: Probe) -> Iterator[Result]:
    served = _served(probe)
    before = served.workers()
    if not before:
        yield Result("process.kill-worker", False, f"no worker process found in the tree {served.pids()}")
        return
    clients = 4
    with Traffic(probe, clients) as traffic:
        time.sleep(1.0)
        answered_before = traffic.tally.answered
        os.kill(before[0], signal.SIGKILL)
        killed_at = time.monotonic()
        recovered = _wait_recovered(served, before, 30.0)
        recovery = time.monotonic() - killed_at
        time.sleep(1.0)
        tally = traffic.stop()
    after_ok = probe.invoke_sample().status
    failed = tally.count("5xx") + tally.lost + tally.hung
    new_workers = [p for p in served.workers() if p not in before]
    passed = recovered and failed <= clients and after_ok // 100 == 2 and bool(new_workers)
    yield Result("process.kill-worker", passed,
                 f"killed worker {before[0]} of {before} after {answered_before} answers; "
                 f"{'recovered' if recovered else 'NOT recovered'} (/ping 200, as many workers as before) in "
                 f"{recovery:.2f} s; "
                 f"requests: {tally.summary()} (at most {clients} in flight may fail); afterwards {after_ok}; "
                 f"new workers {new_workers}", failed, "failed")


def _wait_recovered(served: ServedServer, before: list[int], timeout: float) -> bool:
    """Until /ping is 200 and the killed worker's place is taken: as many workers as before, the killed one gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = served.workers()
        if before[0] not in workers and len(workers) >= len(before) and served.ping() == 200:
            return True
        time.sleep(0.05)
    return False


@check("process.sigterm-drain", "process.sigterm-exit", "process.nothing-left-behind", needs=("process",),
       budget=120, about="SIGTERM under load: no request lost, exit within 30 s, no process left behind")
def sigterm(probe: Probe) -> Iterator[Result]:
    served = _served(probe)
    assert served.proc is not None
    if probe.multi_model:  # load a model, so the traffic is invocations and not 400s for a missing target
        from sagemaker_inference.conformance.checks.mme import lifecycle_url, register_status

        url = lifecycle_url(probe)
        if url and register_status(probe, "conformance-drain", url) == 200:
            probe.target_model = "conformance-drain"
    pids = served.pids()
    if served.proc.poll() is not None:
        why = (f"the process the kit started exited by itself (status {served.proc.returncode}) before SIGTERM; "
               f"its tree lives on without it: {pids}")
        for name in ("process.sigterm-drain", "process.sigterm-exit", "process.nothing-left-behind"):
            yield Result(name, False, why)
        return
    with Traffic(probe, 8, per_request=True, stop_on_refusal=True) as traffic:
        time.sleep(2.0)
        before = traffic.tally.answered
        served.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            code: int | None = served.proc.wait(SIGKILL_AFTER)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - signalled
        tally = traffic.stop()
    # The process the kit started may exit while the server it launched (a daemonized JVM, say) keeps serving.
    serving = code is not None and served.ping(timeout=2.0) != 0
    still = "; but the server STILL ANSWERS on its port: SIGTERM did not stop it" if serving else ""
    yield Result("process.sigterm-drain", tally.lost == 0 and tally.hung == 0 and not serving,
                 f"8 clients, a connection per request; SIGTERM after {before} answers; {tally.summary()}, "
                 f"{tally.refused} refused after it stopped listening"
                 + (f"; lost: {tally.lost_examples}" if tally.lost_examples else "") + still, tally.lost, "lost")
    yield Result("process.sigterm-exit", code is not None and took < SIGKILL_AFTER and not serving,
                 (f"exit status {code} {took:.2f} s after SIGTERM" if code is not None
                  else f"still running {SIGKILL_AFTER:.0f} s after SIGTERM (SageMaker would SIGKILL it)") + still,
                 took, "s")
    deadline = time.monotonic() + 5.0
    left = [p for p in pids if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in pids if _alive(p)]
    left = sorted(set(left) | set(served.pids()))
    yield Result("process.nothing-left-behind", not left,
                 f"{len(pids)} processes before SIGTERM; left 5 s after the exit: {left or 'none'}", len(left),
                 "processes")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rindex(b")") + 2:][:1] != b"Z"
