"""One in-process measurement repeated in several trees of this repo, interleaved.

A tree is the Python of a venv that has one version of the repo installed: ours (the Python
running the script), ``BENCH_BEFORE_PYTHON`` as "before", and any ``NAME=PYTHON`` given on the
command line. Each round runs the measurement once in every tree, one after the other, so a
machine that slows down for a while slows all of them; the best figure per tree is kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence


def chosen(extra: Sequence[str] = ()) -> dict[str, str]:
    """Tree name -> Python: "before" (if set), the ``NAME=PYTHON`` ones, then "ours"."""
    trees: dict[str, str] = {}
    if os.environ.get("BENCH_BEFORE_PYTHON"):
        trees["before"] = os.environ["BENCH_BEFORE_PYTHON"]
    for spec in extra:
        name, _, python = spec.partition("=")
        if not name or not python:
            raise SystemExit(f"--tree {spec!r}: expected NAME=PYTHON")
        trees[name] = python
    trees["ours"] = sys.executable
    return trees


def run_child(python: str, argv: Sequence[str]) -> float:
    """Run ``python argv...`` (the script in child mode) and return the number it prints last."""
    out = subprocess.run([python, *argv], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
    if out.returncode != 0:
        raise SystemExit(f"{python}: {out.stderr.strip()[-2000:]}")
    return float(out.stdout.split()[-1])


def best_of(trees: dict[str, str], rounds: int, argv: Sequence[str]) -> dict[str, float]:
    best = {name: float("inf") for name in trees}
    for _ in range(rounds):
        for name, python in trees.items():
            best[name] = min(best[name], run_child(python, argv))
    return best


def report(best: dict[str, float], header: str) -> None:
    print(f"load average {os.getloadavg()[0]:.2f}; {header}")
    print(f"{'tree':<8} {'us/request':>10}")
    for name, value in best.items():
        ratio = f"  {value / best['before']:.2f}x before" if "before" in best and name != "before" else ""
        print(f"{name:<8} {value:>10.2f}{ratio}")
