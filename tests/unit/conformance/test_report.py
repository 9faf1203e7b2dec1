"""Reporters and the runner: the JSON shape scripts read, the table people read, bounded time per check."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

from sagemaker_inference.conformance import report, runner
from sagemaker_inference.conformance.probe import Options, Probe
from sagemaker_inference.conformance.registry import Check, Result
from sagemaker_inference.conformance.runner import Report


def sample_report() -> Report:
    result = Report("http://127.0.0.1:8080", "quick", seconds=1.25)
    result.results = [Result("ping", True, "GET /ping: 200 in 1.0 ms", 1.0, "ms"),
                      Result("http.half-close", False, "1 POST then SHUT_WR: 0 of 1 answered " + "x" * 200, 0,
                             "responses", extra={"cases": 3})]
    result.skipped = [("process.sigterm-drain", "needs --serve")]
    return result


def test_json_shape():
    document = json.loads(json.dumps(report.to_json(sample_report())))
    assert document["passed"] == 1 and document["failed"] == 1 and document["mode"] == "quick"
    first, second = document["checks"]
    assert (first["name"], first["passed"], first["figure"], first["unit"]) == ("ping", True, 1.0, "ms")
    assert second["passed"] is False and second["detail"].startswith("1 POST then SHUT_WR")
    assert second["cases"] == 3  # extra fields are merged into the check's entry
    assert document["skipped"] == [{"name": "process.sigterm-drain", "why": "needs --serve"}]


def test_table_lists_every_check_with_its_verdict_and_wraps_long_details():
    text = report.table(sample_report(), width=100)
    lines = text.splitlines()
    assert any(line.startswith("ping ") and " pass " in line and "1 ms" in line for line in lines)
    assert any(line.startswith("http.half-close") and "FAIL" in line for line in lines)
    assert all(len(line) <= 100 for line in lines)
    assert "1 passed, 1 failed, 1 not applicable" in " ".join(lines[-2:])
    assert not sample_report().ok


def test_a_check_over_its_budget_is_a_failure_and_the_run_goes_on():
    never = threading.Event()

    def slow(probe: Probe) -> Iterator[Result]:
        yield Result("slow.first", True, "quick part")
        never.wait(60)
        yield Result("slow.second", True, "never reached in time")

    def broken(probe: Probe) -> Iterator[Result]:
        raise RuntimeError("boom")
        yield  # pragma: no cover

    probe = Probe("127.0.0.1", 9, Options(quick=True))
    slow_results = runner._run_one(Check(("slow.first", "slow.second"), slow, frozenset({"quick"}),
                                         frozenset(), 3.0, ""), probe)
    assert [(r.name, r.passed) for r in slow_results] == [("slow.first", True), ("slow.second", False)]
    assert "budget" in slow_results[1].detail
    never.set()
    broken_results = runner._run_one(Check(("broken",), broken, frozenset({"quick"}), frozenset(), 5, ""), probe)
    assert not broken_results[0].passed and "RuntimeError: boom" in broken_results[0].detail


def test_applicability():
    probe = Probe("127.0.0.1", 9, Options(quick=True))
    quick_only = Check(("a",), lambda p: iter(()), frozenset({"full"}), frozenset(), 1, "")
    assert runner.applicable(quick_only, probe) == "quick mode"
    process = Check(("b",), lambda p: iter(()), frozenset({"quick"}), frozenset({"process"}), 1, "")
    assert "--serve" in (runner.applicable(process, probe) or "")
    multi = Check(("c",), lambda p: iter(()), frozenset({"quick"}), frozenset({"multi"}), 1, "")
    assert runner.applicable(multi, probe) == "single-model server"
    probe.multi_model = True
    assert runner.applicable(multi, probe) is None
