"""Checks as small units in one registry.

A unit is a function ``(Probe) -> Iterator[Result]`` registered with the names of the results it yields, the
modes it runs in (``quick``, ``full``), what it needs (``process``: the kit started the server with ``--serve``;
``single``/``multi``: the server is single- or multi-model) and a time budget. The runner gives each unit its
budget; a name the unit did not report in time is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from sagemaker_inference.conformance.probe import Probe


@dataclass
class Result:
    name: str
    passed: bool
    detail: str
    figure: float | None = None  # the measured value the verdict rests on
    unit: str = ""  # of the figure: "ms", "s", "cases", "MB", ...
    expected_failure: str = ""  # set by the runner when told a failure is known (with its issue)
    extra: dict[str, object] = field(default_factory=dict)  # e.g. the failing corpus cases


CheckFn = Callable[["Probe"], Iterator[Result]]


@dataclass(frozen=True)
class Check:
    names: tuple[str, ...]
    run: CheckFn
    modes: frozenset[str]
    needs: frozenset[str]
    budget: float  # seconds
    about: str


CHECKS: list[Check] = []


def check(*names: str, quick: bool = True, full: bool = True, needs: tuple[str, ...] = (), budget: float = 20.0,
          about: str = "") -> Callable[[CheckFn], CheckFn]:
    """Register a unit yielding results named ``names``; ``about`` is the contract point it tests."""

    def register(fn: CheckFn) -> CheckFn:
        modes = frozenset(m for m, on in (("quick", quick), ("full", full)) if on)
        CHECKS.append(Check(names, fn, modes, frozenset(needs), budget, about or (fn.__doc__ or "").strip()))
        return fn

    return register


MODULES = ("http", "limits", "load", "mme", "payloads", "soak", "process")  # run order: process last, since the
# SIGTERM check ends the server, and soak before it


def load_all() -> list[Check]:
    """Import every module of checks (registration happens at import) and return the registry in run order."""
    import importlib

    for name in MODULES:
        importlib.import_module(f"sagemaker_inference.conformance.checks.{name}")
    order = {f"sagemaker_inference.conformance.checks.{name}": i for i, name in enumerate(MODULES)}
    return sorted(CHECKS, key=lambda c: order.get(c.run.__module__, len(order)))
