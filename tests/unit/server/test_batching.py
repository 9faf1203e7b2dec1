"""batching.decide: when a batch is cut (MMS semantics)."""

from __future__ import annotations

import pytest

from sagemaker_inference.server.batching import Cut, decide


@pytest.mark.parametrize(
    ("queued", "batch_size", "oldest_age", "max_delay", "expected"),
    [
        (0, 1, 0.0, 0.1, Cut(0, None)),  # nothing queued: no timer either
        (0, 8, 5.0, 0.1, Cut(0, None)),
        (1, 1, 0.0, 0.1, Cut(1, None)),  # batch size 1 never waits
        (5, 1, 0.0, 0.1, Cut(1, None)),
        (8, 8, 0.0, 0.1, Cut(8, None)),  # full: send at once
        (20, 8, 0.0, 0.1, Cut(8, None)),  # never more than batch_size
        (3, 8, 0.1, 0.1, Cut(3, None)),  # delay spent: send what there is
        (3, 8, 0.5, 0.1, Cut(3, None)),
        (1, 8, 0.0, 0.0, Cut(1, None)),  # zero delay: no waiting
    ],
)
def test_send_now(queued, batch_size, oldest_age, max_delay, expected):
    assert decide(queued, batch_size, oldest_age, max_delay) == expected


@pytest.mark.parametrize(
    ("queued", "batch_size", "oldest_age", "max_delay", "wait"),
    [
        (1, 8, 0.0, 0.1, 0.1),
        (3, 8, 0.04, 0.1, 0.06),
        (7, 8, 0.099, 0.1, 0.001),
    ],
)
def test_wait_for_the_rest_of_the_delay(queued, batch_size, oldest_age, max_delay, wait):
    cut = decide(queued, batch_size, oldest_age, max_delay)
    assert cut.take == 0
    assert cut.wait == pytest.approx(wait)


def test_waits_never_exceed_the_delay_and_always_end_in_a_cut():
    for age in [i / 1000 for i in range(0, 200, 7)]:
        cut = decide(2, 4, age, 0.1)
        if cut.take == 0:
            assert 0 < cut.wait <= 0.1
            assert decide(2, 4, age + cut.wait, 0.1) == Cut(2, None)
        else:
            assert cut == Cut(2, None)
