"""Run the applicable checks in order, each in a thread with its time budget; collect a :class:`Report`.

A unit that overruns its budget is left behind (its thread is a daemon; every socket it holds has its own
timeout, so it ends on its own) and each name it had not reported is a failure saying so. Server-side
process checks run last: the SIGTERM check ends the server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sagemaker_inference.conformance import wire
from sagemaker_inference.conformance.probe import Probe
from sagemaker_inference.conformance.registry import Check, Result, load_all


@dataclass
class Report:
    target: str
    mode: str
    results: list[Result] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.failed


def applicable(check: Check, probe: Probe) -> str | None:
    """Why ``check`` does not apply to this run, or None."""
    mode = "quick" if probe.options.quick else "full"
    if mode not in check.modes:
        return f"{mode} mode"
    if "process" in check.needs and probe.served is None:
        return "needs --serve (the kit must own the server process)"
    if "url" in check.needs and probe.served is not None:
        return "the --serve variant runs instead"
    if "multi" in check.needs and not probe.multi_model:
        return "single-model server"
    if "single" in check.needs and probe.multi_model:
        return "multi-model server"
    if "soak" in check.needs and probe.options.soak <= 0:
        return "soak not asked for (--soak SECONDS)"
    return None


def run(probe: Probe, only: set[str] | None = None, progress: bool = False) -> Report:
    started = time.monotonic()
    report = Report(probe.url, "quick" if probe.options.quick else "full")
    for check in load_all():
        if only and not any(_selected(name, only) for name in check.names):
            continue
        why = applicable(check, probe)
        if why:
            report.skipped += [(name, why) for name in check.names]
            continue
        results = _run_one(check, probe)
        report.results += results
        if progress:
            for result in results:
                print(f"  {'pass' if result.passed else 'FAIL'}  {result.name}", flush=True)
    report.notes = probe.notes
    report.seconds = time.monotonic() - started
    return report


def _selected(name: str, only: set[str]) -> bool:
    return any(name == pattern or name.startswith(pattern.rstrip("*")) for pattern in only)


def _run_one(check: Check, probe: Probe) -> list[Result]:
    results: list[Result] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            for result in check.run(probe):
                results.append(result)
        except Exception as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"check-{check.names[0]}", daemon=True)
    thread.start()
    thread.join(check.budget)
    done = list(results)
    reported = {r.name for r in done}
    for name in check.names:
        if name in reported:
            continue
        if failure and isinstance(failure[0], (wire.NoResponse, OSError)):
            detail = f"the server did not answer one of the check's requests ({_why(failure[0])})"
        elif failure:
            detail = f"the check itself failed: {type(failure[0]).__name__}: {failure[0]}"
        elif thread.is_alive():
            detail = f"no result within the check's {check.budget:.0f} s budget (the server hung?)"
        else:
            detail = "the check ended without a result"
        done.append(Result(name, False, detail))
    return done


def _why(exc: BaseException) -> str:
    return exc.why if isinstance(exc, wire.NoResponse) else f"{type(exc).__name__}: {exc}"
