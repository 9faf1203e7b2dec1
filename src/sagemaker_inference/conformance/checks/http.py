"""HTTP/1.1 behaviour the platform relies on: accept, ``/ping``, keep-alive, pipelining, half-close, framing,
the malformed-request corpus and request-smuggling vectors."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from sagemaker_inference.conformance import corpus, wire
from sagemaker_inference.conformance.probe import Probe
from sagemaker_inference.conformance.registry import Result, check

ACCEPT_LIMIT_MS = 250.0


@check("accept", budget=20, about="a new connection is accepted within 250 ms")
def accept(probe: Probe) -> Iterator[Result]:
    times = []
    for _ in range(20):
        with probe.connect(timeout=5.0) as conn:
            times.append(conn.connect_time * 1000)
    worst = max(times)
    yield Result("accept", worst < ACCEPT_LIMIT_MS,
                 f"20 connects: median {statistics.median(times):.2f} ms, worst {worst:.2f} ms "
                 f"(limit {ACCEPT_LIMIT_MS:.0f} ms)", worst, "ms")


@check("ping", "ping.keep-alive", "ping.head", budget=20,
       about="GET /ping answers 200; 50 pings on one connection; HEAD /ping has no body")
def ping(probe: Probe) -> Iterator[Result]:
    response = probe.get("/ping")
    yield Result("ping", response.status == 200, f"GET /ping: {response.status} in {response.elapsed * 1000:.1f} ms",
                 response.elapsed * 1000, "ms")
    statuses: Counter[int] = Counter()
    with probe.connect() as conn:
        for _ in range(50):
            conn.send(wire.request("GET", "/ping"))
            statuses[conn.read_response().status] += 1
    yield Result("ping.keep-alive", statuses == Counter({200: 50}),
                 f"50 pings on one connection: {dict(statuses)}", statuses[200], "of 50")
    with probe.connect() as conn:
        conn.send(wire.request("HEAD", "/ping") + wire.request("GET", "/ping"))
        head = _read_head_response(conn)
        after = conn.read_response()
    yield Result("ping.head", head == 200 and after.status == 200,
                 f"HEAD /ping: {head}, then GET /ping on the same connection: {after.status} "
                 "(a body after HEAD would corrupt the next response)")


def _read_head_response(conn: wire.Connection) -> int:
    """Status of a HEAD response (httptools cannot be told the request was HEAD, so read the head by hand)."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = conn.sock.recv(65536)
        if not chunk:
            return 0
        raw += chunk
    head, rest = raw.split(b"\r\n\r\n", 1)
    conn._reader.parser.feed_data(rest)  # the next response may already be here
    return int(head.split(b" ", 2)[1])


@check("http.pipelining", budget=30, about="pipelined requests are all answered, in order")
def pipelining(probe: Probe) -> Iterator[Result]:
    ping = wire.request("GET", "/ping")
    requests = [ping] * 5
    expected = [probe.get("/ping").body] * 5
    if probe.serves_invocations():
        content_type, body = probe.sample
        invocation = probe.invocation(body, content_type)
        requests[1] = requests[3] = invocation
        expected[1] = expected[3] = probe.invoke(body, content_type).body
    got: list[bytes] = []
    why = ""
    with probe.connect() as conn:
        conn.send(b"".join(requests))
        try:
            while len(got) < len(requests):
                got.append(conn.read_response().body)
        except wire.NoResponse as exc:
            why = f", then {exc.why}"
    shape = "GET /ping, POST /invocations alternating" if probe.serves_invocations() else "GET /ping"
    labels = {expected[0]: "ping", expected[1]: "invocation" if probe.serves_invocations() else "ping"}
    seen = [labels.get(body, "unexpected body") for body in got]
    wanted = [labels[body] for body in expected]
    yield Result("http.pipelining", got == expected,
                 f"5 pipelined requests ({shape}): {len(got)} answered{why}"
                 + ("" if got == expected[:len(got)] else f"; OUT OF ORDER: sent {wanted}, answers came as {seen}"),
                 len(got), "responses")


@check("http.half-close", "http.half-close-pipelined", needs=("single",), budget=60,
       about="requests followed by shutdown(SHUT_WR) still get their answers (nc -N, some proxies)")
def half_close(probe: Probe) -> Iterator[Result]:
    """Ten tries each: whether an answer survives the EOF can depend on timing, so one try proves little."""
    content_type, body = probe.sample
    tries = 10
    for name, count in (("http.half-close", 1), ("http.half-close-pipelined", 3)):
        answered, lost, whys = 0, 0, set()
        for _ in range(tries):
            with probe.connect() as conn:
                conn.send(probe.invocation(body, content_type) * count)
                conn.shutdown_write()
                for _ in range(count):
                    try:
                        conn.read_response()
                        answered += 1
                    except wire.NoResponse as exc:
                        lost += 1
                        whys.add(exc.why)
        yield Result(name, lost == 0,
                     f"{tries} connections, each {count} POST /invocations then SHUT_WR: {answered} of "
                     f"{tries * count} answered" + (f", {lost} lost ({', '.join(sorted(whys))})" if lost else ""),
                     lost, "lost")


@check("http.1.0", "http.expect-100", "http.chunked-request", needs=("single",), budget=30,
       about="HTTP/1.0 requests, Expect: 100-continue and chunked request bodies are served")
def framing_variants(probe: Probe) -> Iterator[Result]:
    content_type, body = probe.sample
    with probe.connect() as conn:
        conn.send(wire.request("GET", "/ping", version="HTTP/1.0"))
        response = conn.read_response()
        closed = conn.closed_by_peer(5.0)
    yield Result("http.1.0", response.status == 200 and closed,
                 f"GET /ping HTTP/1.0: {response.status}, connection closed after: {closed}")
    with probe.connect() as conn:
        head = probe.invocation(body, content_type, extra={"Expect": "100-continue"})
        split = head.index(b"\r\n\r\n") + 4
        conn.send(head[:split])
        try:
            interim = conn.read_response(timeout=3.0, skip_interim=False).status
        except wire.NoResponse as exc:
            interim = 0 if exc.why == "timeout" else -1
        conn.send(head[split:])
        final = conn.read_response().status if interim in (0, 100) else interim
    yield Result("http.expect-100", interim == 100 and final // 100 in (2, 4) and final != 417,
                 f"Expect: 100-continue: interim {interim or 'none within 3 s'}, final {final}")
    chunked = (head[:split].replace(b"Expect: 100-continue\r\n", b"")
               .replace(b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    plain = probe.invoke(body, content_type)
    response = probe.send(chunked + chunks + b"0\r\n\r\n")
    yield Result("http.chunked-request", response.status == plain.status and response.body == plain.body,
                 f"the sample sent chunked in 7-byte chunks: {response.status} "
                 f"({'same' if response.body == plain.body else 'different'} body as with Content-Length, "
                 f"{plain.status})")


@check("http.unknown-route", "http.wrong-method", budget=15, about="404 for an unknown path, 405 for a known one")
def routes(probe: Probe) -> Iterator[Result]:
    missing = probe.get("/conformance-no-such-route").status
    yield Result("http.unknown-route", missing == 404, f"GET /conformance-no-such-route: {missing}")
    wrong = probe.send(wire.request("DELETE", "/ping")).status
    yield Result("http.wrong-method", wrong in (404, 405), f"DELETE /ping: {wrong} (405, or 404, expected)")


@check("http.corpus", budget=240, about="malformed HTTP and payloads get 4xx (never 5xx, never a hang)")
def corpus_run(probe: Probe) -> Iterator[Result]:
    cases = [c for c in corpus.cases(full=not probe.options.quick)
             if probe.serves_invocations() or b"/invocations" not in c.wire.split(b"\r\n", 1)[0]]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda case: _judge(probe, case), cases))
    failed = [o for o in outcomes if o[1] == "fail"]
    advisories = [o for o in outcomes if o[1] == "advisory"]
    by_family: Counter[str] = Counter(c.family for c, verdict, _ in failed)
    ping = probe.get("/ping").status
    detail = (f"{len(cases) - len(failed)} of {len(cases)} cases answered as expected in "
              f"{time.monotonic() - started:.1f} s; /ping afterwards {ping}")
    if failed:
        detail += "; failed: " + ", ".join(f"{c.name} ({seen})" for c, _, seen in failed[:8])
        detail += f"{' ...' if len(failed) > 8 else ''} by family {dict(by_family)}"
    if advisories:
        detail += "; RFC advisories: " + ", ".join(f"{c.name} ({seen}: {c.advisory})" for c, _, seen in advisories)
    yield Result("http.corpus", not failed and ping == 200, detail, len(failed), "failed",
                 extra={"cases": len(cases), "failures": [{"case": c.name, "family": c.family, "got": seen,
                                                           "expected": sorted(c.expect)} for c, _, seen in failed]})


def _judge(probe: Probe, case: corpus.Case) -> tuple[corpus.Case, str, str]:
    wire_bytes = case.wire
    if probe.target_model and wire_bytes.startswith(b"POST /invocations "):
        wire_bytes = wire_bytes.replace(b"/invocations", probe.invocations_path.encode(), 1)
    klass, response, why = wire.outcome(probe.host, probe.port, wire_bytes, probe.timeout)
    status = response.status if response else None
    seen = str(status) if status else (f"{klass}: {why}" if why else klass)
    return case, case.judge(klass, status), seen


SMUGGLED = b"GET /conformance-smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _vectors() -> dict[str, bytes]:
    """Each vector hides ``SMUGGLED`` where one reading of the framing sees a second request."""
    post = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    as_chunk = b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"
    end_chunks = b"0\r\n\r\n" + SMUGGLED
    n = len(end_chunks)
    return {
        "cl-te": post + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % n + end_chunks,
        "te-cl": post + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + as_chunk,
        "two-lengths": post + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        "length-list": post + b"Content-Length: 0, %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        "te-leading-space": post + b"Content-Length: %d\r\nTransfer-Encoding:  chunked\r\n\r\n" % n + end_chunks,
        "te-space-before-colon": post + b"Content-Length: %d\r\nTransfer-Encoding : chunked\r\n\r\n" % n
        + end_chunks,
        "te-vertical-tab": post + b"Content-Length: %d\r\nTransfer-Encoding:\x0bchunked\r\n\r\n" % n + end_chunks,
        "te-xchunked": post + b"Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n\r\n" % n + end_chunks,
        "te-identity-chunked": post + b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: %d\r\n\r\n" % n + end_chunks,
        "te-chunked-identity": post + b"Transfer-Encoding: chunked, identity\r\nContent-Length: %d\r\n\r\n" % n
        + end_chunks,
        "te-obs-fold": post + b"Content-Length: %d\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" % n + end_chunks,
        "chunk-size-overflow": post + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" + b"0" * 16 + b"%x\r\n"
        % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n",
        "chunk-ext-bare-lf": post + b"Transfer-Encoding: chunked\r\n\r\n5;\n" + b"x" * 5 + b"\r\n0\r\n\r\n"
        + SMUGGLED,
        "te-http-1.0": post.replace(b"HTTP/1.1", b"HTTP/1.0") + b"Content-Length: %d\r\nTransfer-Encoding: "
        b"chunked\r\n\r\n" % n + end_chunks,
        "length-plus-sign": post + b"Content-Length: +%d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        "bare-lf-header-end": post + b"Content-Length: %d\n\n" % len(SMUGGLED) + SMUGGLED,
    }


@check("http.smuggling", needs=("single",), budget=90,
       about="request-smuggling vectors (CL+TE, duplicate lengths, TE variants, chunk overflow) never desync")
def smuggling(probe: Probe) -> Iterator[Result]:
    verdicts = {name: _smuggle(probe, data) for name, data in _vectors().items()}
    bad = {name: why for name, (ok, why) in verdicts.items() if not ok}
    refused = sum(1 for ok, why in verdicts.values() if ok and why.startswith("refused"))
    detail = f"{len(verdicts) - len(bad)} of {len(verdicts)} vectors safe ({refused} refused with 4xx and a close)"
    if bad:
        detail += "; unsafe: " + "; ".join(f"{name}: {why}" for name, why in bad.items())
    yield Result("http.smuggling", not bad, detail, len(bad), "unsafe",
                 extra={"vectors": {name: why for name, (ok, why) in verdicts.items()}})


def _smuggle(probe: Probe, data: bytes) -> tuple[bool, str]:
    """Safe: no answer to the hidden request (it would be a 404), no 5xx, and an answer or a close."""
    statuses: list[int] = []
    ending = ""
    with probe.connect() as conn:
        conn.send(data)
        try:
            while len(statuses) < 3:
                statuses.append(conn.read_response(timeout=3.0).status)
        except wire.NoResponse as exc:
            ending = exc.why
    if 404 in statuses[1:] or (statuses and statuses[0] == 404):
        return False, f"the hidden request was answered ({statuses})"
    if any(s >= 500 for s in statuses):
        return False, f"5xx ({statuses})"
    if not statuses and ending == "timeout":
        return False, "no answer and no close within 3 s (the server waits for bytes a proxy considers sent)"
    if statuses and statuses[0] // 100 == 4 and ending != "timeout":
        return True, f"refused ({statuses[0]}, then {ending})"
    return True, f"answered {statuses}, then {ending}"
