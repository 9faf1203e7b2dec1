"""The malformed-request corpus: size, determinism, and that every case is what its expectation says it is."""

from __future__ import annotations

import io
import json

import httptools
import numpy as np
import pytest

from sagemaker_inference.conformance import corpus

CLASSES = {"2xx", "4xx", "close", "501", "505", "406", "417"}


@pytest.fixture(scope="module")
def full() -> list[corpus.Case]:
    return corpus.cases(full=True)


def test_full_corpus_has_at_least_1000_cases_with_unique_names(full):
    assert len(full) >= 1000
    assert len({c.name for c in full}) == len(full)


def test_every_case_has_an_expected_class_from_the_vocabulary(full):
    for case in full:
        assert case.expect and case.expect <= CLASSES, case.name
        assert "5xx" not in case.expect and "timeout" not in case.expect, case.name


def test_generation_is_deterministic(full):
    again = corpus.cases(full=True)
    differ = [(a.name, b.name) for a, b in zip(again, full) if (a.name, a.wire, a.expect) != (b.name, b.wire, b.expect)]
    assert (len(again), differ[:3]) == (len(full), [])


def test_quick_subset_holds_every_shipped_case_and_some_of_each_family(full):
    quick = corpus.cases(full=False)
    names = {c.name for c in full}
    assert {c.name for c in quick} <= names
    assert {c.name for c in corpus._shipped()} <= {c.name for c in quick}
    assert 100 <= len(quick) <= 200
    assert {c.family for c in quick} == {c.family for c in full}


def body_of(case: corpus.Case) -> bytes:
    return case.wire.split(b"\r\n\r\n", 1)[1]


def test_json_cases_are_really_invalid_json(full):
    cases = [c for c in full if c.family == "json" and c.expect == corpus.CLIENT]
    assert len(cases) >= 400
    for case in cases:
        with pytest.raises((ValueError, RecursionError)):
            json.loads(body_of(case))


def test_generated_npy_cases_are_really_unreadable(full):
    shipped = {c.name for c in corpus._shipped()}
    cases = [c for c in full if c.family == "npy" and c.name not in shipped]
    assert len(cases) >= 150
    for case in cases:
        with pytest.raises(Exception):  # noqa: B017 - any failure to read is what the case claims
            np.lib.format.read_array(io.BytesIO(body_of(case)), allow_pickle=False)


def test_payload_cases_are_well_framed_http(full):
    """A payload case must be malformed in its body only: its HTTP framing parses and the body is complete."""
    class Events:
        complete = 0

        def on_message_complete(self) -> None:
            self.complete += 1

    for case in (c for c in full if c.family in ("json", "csv", "npy", "npz")):
        events = Events()
        httptools.HttpRequestParser(events).feed_data(case.wire)
        assert events.complete == 1, case.name


def test_judging_rules():
    case = corpus.Case("x", "header", b"", corpus.CLIENT)
    assert case.judge("4xx", 400) == "pass"
    assert case.judge("2xx", 200) == "fail"
    assert case.judge("5xx", 500) == "fail"
    assert case.judge("timeout", None) == "fail"
    exact = corpus.Case("y", "framing", b"", corpus.CLIENT | {"501"})
    assert exact.judge("5xx", 501) == "pass"
    assert exact.judge("5xx", 500) == "fail"
    advisory = corpus.Case("z", "header", b"", corpus.CLIENT, advisory="RFC says 400")
    assert advisory.judge("2xx", 200) == "advisory"
    assert advisory.judge("5xx", 500) == "fail"  # never 5xx, advisory or not
    assert advisory.judge("timeout", None) == "fail"  # never a hang
