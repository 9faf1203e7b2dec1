"""Reporters: a table for people, JSON for machines.

JSON shape (stable; ``checks`` is what CI and scripts read)::

    {"target": "http://127.0.0.1:8080", "mode": "quick", "passed": 24, "failed": 1, "seconds": 21.3,
     "checks": [{"name": "http.half-close", "passed": false, "detail": "...", "figure": 0, "unit": "responses",
                 "about": "..."}, ...],
     "skipped": [{"name": "process.sigterm-drain", "why": "needs --serve ..."}], "notes": [...]}
"""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import Any

from sagemaker_inference.conformance.registry import CHECKS
from sagemaker_inference.conformance.runner import Report


def _about(name: str) -> str:
    return next((c.about for c in CHECKS if name in c.names), "")


def to_json(report: Report) -> dict[str, Any]:
    checks = []
    for r in report.results:
        entry: dict[str, Any] = {"name": r.name, "passed": r.passed, "detail": r.detail, "figure": r.figure,
                                 "unit": r.unit, "about": _about(r.name)}
        entry.update(r.extra)
        checks.append(entry)
    return {"target": report.target, "mode": report.mode, "passed": len(report.results) - len(report.failed),
            "failed": len(report.failed), "seconds": round(report.seconds, 1), "checks": checks,
            "skipped": [{"name": n, "why": w} for n, w in report.skipped], "notes": report.notes}


def write_json(report: Report, path: str) -> None:
    with open(path, "w") as f:
        json.dump(to_json(report), f, indent=2)
        f.write("\n")


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    text = f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(report: Report, width: int | None = None) -> str:
    """Aligned rows: check, PASS/FAIL, figure, detail (wrapped to the terminal)."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    name_w = max([len(r.name) for r in report.results] + [5])
    figures = [_figure(r.figure, r.unit) for r in report.results]
    fig_w = max([len(f) for f in figures] + [6])
    indent = name_w + fig_w + 12
    lines = [f"{'check':<{name_w}}  result  {'figure':>{fig_w}}  detail", "-" * min(width, 160)]
    for r, fig in zip(report.results, figures):
        verdict = "pass" if r.passed else "FAIL"
        wrapped = textwrap.wrap(r.detail, max(30, width - indent)) or [""]
        lines.append(f"{r.name:<{name_w}}  {verdict:<6}  {fig:>{fig_w}}  {wrapped[0]}")
        lines += [" " * indent + more for more in wrapped[1:]]
    lines.append("-" * min(width, 160))
    summary = f"{len(report.results) - len(report.failed)} passed, {len(report.failed)} failed"
    if report.skipped:
        summary += f", {len(report.skipped)} not applicable (see --json)"
    lines += textwrap.wrap(f"{summary} in {report.seconds:.1f} s against {report.target} ({report.mode} mode)",
                           width)
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
