"""The restart back-off: doubling from 0.1 s, capped, for any count of consecutive failures."""

from __future__ import annotations

import pytest

from sagemaker_inference.server.workers.pool import restart_delay


@pytest.mark.parametrize(("failures", "delay"), [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.4), (8, 10.0)])
def test_doubles_then_caps(failures, delay):
    assert restart_delay(failures) == pytest.approx(delay)


@pytest.mark.parametrize("failures", [1025, 1026, 10**6])
def test_never_overflows(failures):
    assert restart_delay(failures) == 10.0
