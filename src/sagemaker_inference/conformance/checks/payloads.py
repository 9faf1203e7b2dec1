"""``/invocations`` round trips for the content types the server claims, and the answers to bad payloads."""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator

from sagemaker_inference.conformance import corpus, wire
from sagemaker_inference.conformance.probe import Probe
from sagemaker_inference.conformance.registry import Result, check

SLEEP = 1.5  # seconds the pickle asks for: a delay that long can only mean the server ran it


class _Sleeper:
    """Unpickling this calls ``time.sleep(SLEEP)``: harmless, and visible from outside as a slow answer."""

    def __reduce__(self) -> tuple[object, tuple[float]]:
        return time.sleep, (SLEEP,)


def pickle_npy() -> bytes:
    """An NPY body of dtype object whose pickle runs ``time.sleep`` when loaded with ``allow_pickle=True``."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    return corpus._npy_with_header(header, pickle.dumps(_Sleeper(), protocol=2))


@check("invocations.round-trip", needs=("single",), budget=30,
       about="each sample content type is answered 2xx, or 415 when the server does not claim it")
def round_trip(probe: Probe) -> Iterator[Result]:
    served: list[str] = []
    refused: list[str] = []
    broken: list[str] = []
    for content_type, body in probe.options.samples.items():
        response = probe.invoke(body, content_type)
        (served if response.status // 100 == 2 else refused if response.status == 415 else broken).append(
            f"{content_type} {response.status} in {response.elapsed * 1000:.1f} ms")
    yield Result("invocations.round-trip", bool(served) and not broken,
                 f"served: {', '.join(served) or 'none'}; not claimed (415): {', '.join(refused) or 'none'}"
                 + (f"; failed: {', '.join(broken)}" if broken else ""), len(served), "types")


@check("invocations.accept", needs=("single",), budget=30,
       about="Accept is honoured for each served type, and an Accept the server cannot produce gets 406/415")
def accept_negotiation(probe: Probe) -> Iterator[Result]:
    content_type, body = probe.sample
    honoured, wrong = [], []
    for accept in ("application/json", "text/csv", "application/x-npy"):
        response = probe.invoke(body, content_type, accept)
        got = response.headers.get("content-type", "").split(";")[0].strip()
        if response.status // 100 == 2 and got == accept:
            honoured.append(accept)
        elif response.status // 100 == 2 or response.status >= 500:
            wrong.append(f"{accept} -> {response.status} {got or 'no content-type'}")
    nonsense = probe.invoke(body, content_type, "application/x-conformance-nonsense").status
    yield Result("invocations.accept", not wrong and nonsense in (406, 415) and bool(honoured),
                 f"honoured: {', '.join(honoured) or 'none'}; Accept application/x-conformance-nonsense: {nonsense}"
                 + (f"; wrong: {', '.join(wrong)}" if wrong else ""), len(honoured), "types")


def _bad_payload(name: str, about: str, content_type: str, body: bytes) -> None:
    @check(name, needs=("single",), budget=30, about=about)
    def run(probe: Probe) -> Iterator[Result]:
        response = probe.invoke(body, content_type)
        yield Result(name, response.status // 100 == 4,
                     f"{response.status}: {response.body[:160].decode('utf-8', 'replace')}", response.status,
                     "status")


_bad_payload("payload.malformed-json", "malformed JSON is a client fault: 4xx", "application/json", b"[[1.0, 2.0")
_bad_payload("payload.malformed-csv", "ragged CSV rows are a client fault: 4xx", "text/csv", b"1,2,3,4\n5,6\n")
_bad_payload("payload.malformed-npy", "a truncated NPY body is a client fault: 4xx", "application/x-npy",
             corpus._npy("float64")[:70])
_bad_payload("payload.unsupported-content-type", "an unknown Content-Type gets 415 (4xx)",
             "application/x-conformance-nonsense", b"[[1.0, 2.0, 3.0, 4.0]]")
_bad_payload("payload.empty-json", "an empty JSON body is a client fault: 4xx", "application/json", b"")


@check("payload.npy-exotic-dtypes", needs=("single",), budget=30,
       about="NPY bodies of complex, bytes, datetime, void and zero-itemsize dtypes are served or refused, never 5xx")
def npy_exotic(probe: Probe) -> Iterator[Result]:
    answers = {}
    for dtype in ("complex128", "S4", "datetime64[s]", "V8"):
        answers[dtype] = probe.invoke(corpus._npy(dtype), "application/x-npy").status
    zero_size = corpus._npy_with_header("{'descr': '<U0', 'fortran_order': False, 'shape': (10**15,), }", b"")
    answers["<U0 x 10**15"] = probe.invoke(zero_size, "application/x-npy").status
    bad = {d: s for d, s in answers.items() if s >= 500}
    yield Result("payload.npy-exotic-dtypes", not bad, f"statuses {answers}", len(bad), "5xx")


@check("payload.npy-pickle", needs=("single",), budget=30,
       about="an NPY body holding a pickle is refused (4xx) and never unpickled (no code runs)")
def npy_pickle(probe: Probe) -> Iterator[Result]:
    baseline = probe.invoke_sample().elapsed
    started = time.monotonic()
    try:
        response = probe.invoke(pickle_npy(), "application/x-npy", timeout=max(probe.timeout, SLEEP + 10))
        status, body = response.status, response.body[:120].decode("utf-8", "replace")
    except wire.NoResponse as exc:
        status, body = 0, exc.why
    took = time.monotonic() - started
    ran = took >= SLEEP and took - baseline >= SLEEP * 0.9
    verdict = "the pickle RAN on the server (it calls time.sleep(1.5); the answer took that long)" if ran else \
        "the pickle did not run"
    yield Result("payload.npy-pickle", status // 100 == 4 and not ran,
                 f"{status} after {took:.2f} s (sample {baseline * 1000:.0f} ms): {verdict}; {body}", took, "s")


@check("payload.error-body", needs=("single",), budget=15,
       about="an error answer says what was wrong: a body with a Content-Type, and no traceback of server internals")
def error_body(probe: Probe) -> Iterator[Result]:
    response = probe.invoke(b"[[1.0, 2.0", "application/json")
    text = response.body.decode("utf-8", "replace").strip()
    content_type = response.headers.get("content-type", "")
    traceback = "Traceback (most recent call last)" in text
    yield Result("payload.error-body", response.status >= 400 and bool(text) and bool(content_type) and not traceback,
                 f"{response.status} {content_type or 'without a Content-Type'}"
                 + (", WITH A TRACEBACK of the server's code" if traceback else "") + f": {text[:100]!r}",
                 len(response.body), "bytes")
