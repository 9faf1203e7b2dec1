"""The corpus of malformed requests: each case is the exact bytes sent and the class of answer it must get.

Two sources: ``SHIPPED`` (written by hand: cases that found real bugs, and the RFC 9112 rules that matter for
framing) and generated families (every forbidden byte in a header name, truncations and mutations of valid JSON,
CSV and NPY bodies, ...), made deterministically from a fixed seed so a run is repeatable and a failing case can
be named and re-sent. ``cases(full=True)`` is at least 1,000 cases; ``cases(full=False)`` is the quick subset
(every shipped case and one in ten generated).

Expected classes are the answers the contract allows: ``4xx`` (a client fault), ``2xx`` (a valid request),
``close`` (closing without an answer, allowed only for bytes that are not HTTP at all or for limits where the
server may stop reading), and the exact 5xx statuses the RFC prescribes (``501`` for a transfer coding or method
it does not implement, ``505`` for a major version it does not support). Anything else is a failure, and a
``5xx`` outside those or no answer within the read timeout (``timeout``) is always one.

A case with ``advisory`` set states an RFC requirement that SageMaker's own front end never exercises (it always
sends one ``Host``); breaking it is reported but does not fail the check (never-5xx and never-hang still do).
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass

CLIENT = frozenset({"4xx"})
CLIENT_OR_CLOSE = frozenset({"4xx", "close"})
ANSWER = frozenset({"2xx", "4xx"})  # the server may accept or refuse, but must answer and not fail
OK = frozenset({"2xx"})
SEED = 14


@dataclass(frozen=True)
class Case:
    name: str
    family: str  # "request-line", "header", "framing", "json", "csv", "npy", "npz", "media-type"
    wire: bytes
    expect: frozenset[str]
    advisory: str = ""  # non-empty: an RFC rule outside the SageMaker contract (reported, not failed)

    def judge(self, klass: str, status: int | None) -> str:
        """``pass``, ``advisory`` or ``fail`` for an observed outcome class (``4xx``, ``close``...)."""
        if klass in self.expect or (status is not None and str(status) in self.expect):
            return "pass"
        if self.advisory and klass not in ("5xx", "timeout"):
            return "advisory"
        return "fail"


def _head(request_line: bytes, *headers: bytes) -> bytes:
    return request_line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def _ping(*headers: bytes, line: bytes = b"GET /ping HTTP/1.1") -> bytes:
    return _head(line, b"Host: 127.0.0.1", *headers)


def _post(body: bytes, content_type: str = "application/json", *headers: bytes, length: bool = True) -> bytes:
    fields = [b"Host: 127.0.0.1", b"Content-Type: " + content_type.encode("latin-1"), *headers]
    if length:
        fields.append(b"Content-Length: " + str(len(body)).encode())
    return _head(b"POST /invocations HTTP/1.1", *fields) + body


SAMPLE = b"[[1.0, 2.0, 3.0, 4.0]]"


def _shipped() -> list[Case]:
    c = Case
    chunked = b"Transfer-Encoding: chunked"
    return [
        c("garbage", "request-line", b"THIS IS NOT HTTP\r\n\r\n", CLIENT_OR_CLOSE),
        c("tls-client-hello", "request-line", bytes.fromhex("16030100a5010000a10303") + b"\0" * 32, CLIENT_OR_CLOSE),
        c("h2-preface", "request-line", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", CLIENT_OR_CLOSE | {"505"}),
        c("no-colon", "header", _ping(b"Bad Header Line"), CLIENT),
        c("space-before-colon", "header", _ping(b"X-Test : 1"), CLIENT),
        c("empty-header-name", "header", _ping(b": value"), CLIENT),
        c("nul-in-value", "header", _ping(b"X-Nul: a\x00b"), ANSWER),
        c("bare-cr-in-value", "header", _ping(b"X-Cr: a\rb"), ANSWER),
        c("obs-fold", "header", _ping(b"X-Fold: a", b" b"), ANSWER),
        c("leading-space-first-header", "header", _head(b"GET /ping HTTP/1.1", b" X-A: 1", b"Host: x"), ANSWER),
        c("missing-host", "header", _head(b"GET /ping HTTP/1.1"), CLIENT,
          advisory="RFC 9112 3.2: a request without Host gets 400"),
        c("two-hosts", "header", _ping(b"Host: other"), CLIENT,
          advisory="RFC 9112 3.2: a request with two Host fields gets 400"),
        c("header-1mb", "header", _ping(b"X-Big: " + b"a" * 1048576), CLIENT_OR_CLOSE),
        c("10000-headers", "header", _ping(*[b"X-H%d: v" % i for i in range(10000)]), CLIENT_OR_CLOSE | ANSWER),
        c("target-100kb", "request-line", _ping(line=b"GET /ping?" + b"a" * 102400 + b" HTTP/1.1"),
          CLIENT_OR_CLOSE | ANSWER),
        c("bad-content-length", "framing", _post(SAMPLE, "application/json", b"Content-Length: nope", length=False),
          CLIENT),
        c("negative-content-length", "framing", _post(SAMPLE, "application/json", b"Content-Length: -1",
                                                     length=False), CLIENT),
        c("two-content-lengths", "framing", _post(SAMPLE, "application/json", b"Content-Length: 3"), CLIENT),
        c("content-length-overflow", "framing",
          _post(SAMPLE, "application/json", b"Content-Length: 184467440737095516160", length=False),
          CLIENT_OR_CLOSE),
        c("chunk-size-overflow", "framing",
          _post(b"10000000000000000a\r\n" + SAMPLE + b"\r\n0\r\n\r\n", "application/json", chunked, length=False),
          CLIENT),
        c("chunk-size-not-hex", "framing", _post(b"zz\r\n" + SAMPLE + b"\r\n0\r\n\r\n", "application/json", chunked,
                                                 length=False), CLIENT),
        c("chunked-not-final", "framing", _post(SAMPLE, "application/json", b"Transfer-Encoding: chunked, gzip"),
          CLIENT | {"501"}),
        c("unknown-transfer-coding", "framing",
          _post(SAMPLE, "application/json", b"Transfer-Encoding: xchunked", length=False), CLIENT | {"501"}),
        c("te-on-http-1.0", "framing", _head(b"POST /invocations HTTP/1.0", b"Host: x", chunked,
                                             b"Content-Type: application/json")
          + b"%x\r\n" % len(SAMPLE) + SAMPLE + b"\r\n0\r\n\r\n",
          CLIENT_OR_CLOSE | ANSWER),
        c("query-nul", "request-line", _ping(line=b"GET /ping?a=1%00b HTTP/1.1"), ANSWER),
        c("json-truncated", "json", _post(b"[[1.0, 2.0"), CLIENT),
        c("json-not-utf8", "json", _post(b'["\xff\xfe"]'), CLIENT),
        c("json-deep-nesting", "json", _post(b"[" * 100000 + b"]" * 100000), CLIENT),
        c("json-charset-undefined", "media-type", _post(SAMPLE, "application/json; charset=undefined"), CLIENT),
        c("csv-ragged", "csv", _post(b"1,2,3,4\n5,6\n", "text/csv"), CLIENT),
        c("csv-not-utf8", "csv", _post(b"1,2,\xff,4\n", "text/csv"), CLIENT),
        c("unsupported-content-type", "media-type", _post(SAMPLE, "application/x-conformance-nonsense"), CLIENT),
        c("unsupported-accept", "media-type", _post(SAMPLE, "application/json",
                                                    b"Accept: application/x-conformance-nonsense"), CLIENT),
        c("malformed-content-type", "media-type", _post(SAMPLE, ";;;"), CLIENT),
        c("npy-object-dtype", "npy", _post(_npy_with_header("{'descr': '|O', 'fortran_order': False, "
                                                           "'shape': (1,), }", b"\x80\x04N."),
                                            "application/x-npy"), CLIENT),
        c("npy-complex", "npy", _post(_npy("complex128"), "application/x-npy"), ANSWER),
        c("npy-bytes", "npy", _post(_npy("S4"), "application/x-npy"), ANSWER),
        c("npy-datetime", "npy", _post(_npy("datetime64[s]"), "application/x-npy"), ANSWER),
        c("npy-void", "npy", _post(_npy("V8"), "application/x-npy"), ANSWER),
        c("npy-zero-itemsize-huge", "npy", _post(_npy_with_header(
            "{'descr': '<U0', 'fortran_order': False, 'shape': (1000000000000000,), }", b""),
            "application/x-npy"), ANSWER),
        c("npy-huge-shape", "npy", _post(_npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,), }", b"\0" * 64),
            "application/x-npy"), CLIENT),
        c("npz-not-a-zip", "npz", _post(b"PK\x03\x04 not really a zip", "application/x-npz"), CLIENT),
    ]


# -- generated families ---------------------------------------------------------------------------------------


def _request_line_cases() -> list[Case]:
    cases = []
    bad_methods = [b"", b"G\x00T", b"GET\x7f", b"G(T", b"GE:T", b"GET/", b"G\tET", b"\x01GET", b"M" * 10000]
    for i, method in enumerate(bad_methods):
        cases.append(Case(f"method-invalid-{i}", "request-line", _ping(line=method + b" /ping HTTP/1.1"),
                          CLIENT_OR_CLOSE | {"501"}))
    for method in (b"FOO", b"BREW", b"get", b"Get", b"CONNECT", b"TRACE", b"PATCH", b"PROPFIND"):
        cases.append(Case(f"method-unknown-{method.decode()}", "request-line",
                          _ping(line=method + b" /ping HTTP/1.1"), CLIENT | {"501"}))
    bad_targets = [b"ping", b"/pi\x00ng", b"/pi ng", b"/ping\x7f", b"/\x01", b"/%", b"/%zz", b"/%00", b"/\xff",
                   b"http://", b"//", b"/ping\r", b"/\x1b[31m", b"/../../etc/passwd", b"/ping#frag", b"*",
                   b"http://127.0.0.1/ping", b"/ping?" + b"%" * 100, b"/ping;a=b", b"/PING", b"/ping/..",
                   b"/" + b"a" * 8000, b"/ping?a=\xff", b"/ping?\x00"]
    for i, target in enumerate(bad_targets):
        expect = CLIENT_OR_CLOSE if b"\x00" in target or b"\r" in target or target == b"/pi ng" else ANSWER
        cases.append(Case(f"target-{i}", "request-line", _ping(line=b"GET " + target + b" HTTP/1.1"),
                          expect | CLIENT))
    for version in (b"HTTP/1.", b"HTTP/", b"HTTP/1.1.1", b"HTTP/11", b"HTTP/1.x", b"http/1.1", b"HTTP/-1.1",
                    b"HTTPS/1.1", b"HTTP/1.1 extra", b"HTTP/01.1", b"HTTP/1.1\x00", b"HTTP\\1.1", b"HTTP/1,1",
                    b"", b"HTTP/ 1.1", b"HTTP /1.1"):
        cases.append(Case(f"version-{version.decode('latin-1')!r}", "request-line",
                          _ping(line=b"GET /ping " + version), CLIENT_OR_CLOSE | {"505"}))
    for version in (b"HTTP/2.0", b"HTTP/3.0", b"HTTP/9.9", b"HTTP/0.9", b"HTTP/1.2", b"HTTP/1.9"):
        cases.append(Case(f"version-{version.decode()}", "request-line", _ping(line=b"GET /ping " + version),
                          CLIENT_OR_CLOSE | ANSWER | {"505"}))
    separators = {
        "tab": b"GET\t/ping\tHTTP/1.1", "two-spaces": b"GET  /ping HTTP/1.1", "trailing-space": b"GET /ping HTTP/1.1 ",
        "leading-space": b" GET /ping HTTP/1.1", "vtab": b"GET\x0b/ping HTTP/1.1", "nul": b"GET\x00/ping HTTP/1.1",
    }
    for name, line in separators.items():
        cases.append(Case(f"separator-{name}", "request-line", _ping(line=line), CLIENT_OR_CLOSE | ANSWER))
    cases.append(Case("bare-lf-lines", "request-line", b"GET /ping HTTP/1.1\nHost: x\n\n", CLIENT_OR_CLOSE | ANSWER))
    cases.append(Case("bare-cr-lines", "request-line", b"GET /ping HTTP/1.1\rHost: x\r\r", CLIENT_OR_CLOSE))
    cases.append(Case("empty-lines-before", "request-line", b"\r\n\r\n" + _ping(), CLIENT_OR_CLOSE | ANSWER))
    return cases


def _header_cases() -> list[Case]:
    cases = []
    forbidden = [bytes([b]) for b in range(0x00, 0x20) if b not in (0x09, 0x0A, 0x0D)]
    forbidden += [b"\x7f", *(bytes([b]) for b in b'()<>@,;\\"/[]?={} \t'), b"\x80", b"\xff"]
    for char in forbidden:
        cases.append(Case(f"name-byte-{char.hex()}", "header", _ping(b"X" + char + b"Y: v"), CLIENT))
    for char in [bytes([b]) for b in range(0x00, 0x20) if b not in (0x09, 0x0A)] + [b"\x7f"]:
        cases.append(Case(f"value-byte-{char.hex()}", "header", _ping(b"X-V: a" + char + b"b"), ANSWER | CLIENT))
    for char in (b"\x80", b"\xa0", b"\xff", "é".encode(), "\u2028".encode()):
        cases.append(Case(f"value-obs-text-{char.hex()}", "header", _ping(b"X-V: " + char), ANSWER))
    for size in (4096, 8190, 16384, 65536, 262144):
        expect = ANSWER if size <= 8190 else ANSWER | CLIENT_OR_CLOSE
        cases.append(Case(f"value-{size}-bytes", "header", _ping(b"X-Big: " + b"v" * size), expect))
    for count in (100, 1000, 5000):
        cases.append(Case(f"{count}-headers", "header", _ping(*[b"X-H%d: v" % i for i in range(count)]),
                          ANSWER | CLIENT_OR_CLOSE))
    for name, fields in {
        "name-only-colon": [b":"], "colon-colon": [b"X:: v"], "tab-before-colon": [b"X-T\t: v"],
        "crlf-in-continuation": [b"X-A: 1", b"\t2"], "lf-only-header": [b"X-A: 1\nX-B: 2"],
        "content-type-twice": [b"Content-Type: a/b", b"Content-Type: c/d"],
        "host-with-space": [b"Host: a b"], "host-with-at": [b"Host: user@127.0.0.1"],
        "expect-unknown": [b"Expect: 200-ok"], "connection-garbage": [b"Connection: \x01"],
        "upgrade-h2c-get": [b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c", b"HTTP2-Settings: AAMAAABkAAQ"],
        "upgrade-websocket-no-key": [b"Connection: Upgrade", b"Upgrade: websocket"],
    }.items():
        expect = ANSWER | {"417"} if name == "expect-unknown" else ANSWER
        if name in ("name-only-colon", "colon-colon", "tab-before-colon", "lf-only-header"):
            expect = CLIENT | ANSWER
        cases.append(Case(f"field-{name}", "header", _ping(*fields), expect))
    return cases


def _framing_cases() -> list[Case]:
    cases = []
    lengths = {"abc": CLIENT, "-1": CLIENT, "+22": CLIENT, "0x16": CLIENT, "2.2e1": CLIENT, "22 22": CLIENT,
               "22,23": CLIENT, "22, 22": CLIENT | ANSWER, "": CLIENT, "22\x00": CLIENT, "99999999999999999999999":
               CLIENT_OR_CLOSE, "1" * 200: CLIENT_OR_CLOSE, "\t22": ANSWER, "022": ANSWER, "0000000000022": ANSWER}
    for i, (value, expect) in enumerate(lengths.items()):
        cases.append(Case(f"content-length-{i}", "framing",
                          _post(SAMPLE, "application/json", b"Content-Length: " + value.encode(), length=False),
                          expect))
    codings = {"chunked": ANSWER, "Chunked": ANSWER, "CHUNKED": ANSWER, "gzip": CLIENT | {"501"},
               "gzip, chunked": ANSWER | {"501"}, "identity": CLIENT | ANSWER | {"501"},
               "chunked, chunked": CLIENT | {"501"}, "chunked, identity": CLIENT | {"501"},
               "xchunked": CLIENT | {"501"},
               "chunked\x0b": CLIENT | {"501"}, "chunk": CLIENT | {"501"}, "\x00chunked": CLIENT | {"501"},
               "chunked;q=1": CLIENT | {"501"}, '"chunked"': CLIENT | {"501"}}
    body = b"%x\r\n" % len(SAMPLE) + SAMPLE + b"\r\n0\r\n\r\n"
    for i, (coding, expect) in enumerate(codings.items()):
        cases.append(Case(f"transfer-coding-{i}", "framing",
                          _post(body, "application/json", b"Transfer-Encoding: " + coding.encode(), length=False),
                          expect))
    size = b"%x" % len(SAMPLE)
    chunk_bodies = {
        "size-negative": b"-16\r\n" + SAMPLE + b"\r\n0\r\n\r\n", "size-0x": b"0x" + size + b"\r\n" + SAMPLE +
        b"\r\n0\r\n\r\n", "size-space": b" " + size + b"\r\n" + SAMPLE + b"\r\n0\r\n\r\n",
        "no-crlf-after-data": size + b"\r\n" + SAMPLE + b"XX0\r\n\r\n",
        "data-longer": size + b"\r\n" + SAMPLE + b"EXTRA\r\n0\r\n\r\n",
        "size-plus": b"+" + size + b"\r\n" + SAMPLE + b"\r\n0\r\n\r\n",
        "ext-nul": size + b";a\x00b\r\n" + SAMPLE + b"\r\n0\r\n\r\n",
        "ext-100kb": size + b";" + b"a" * 102400 + b"\r\n" + SAMPLE + b"\r\n0\r\n\r\n",
        "bad-trailer": size + b"\r\n" + SAMPLE + b"\r\n0\r\nNo Colon Here\r\n\r\n",
        "size-underscore": size[:1] + b"_" + size[1:] + b"\r\n" + SAMPLE + b"\r\n0\r\n\r\n",
        "size-64-digits": b"0" * 64 + size + b"\r\n" + SAMPLE + b"\r\n0\r\n\r\n",
    }
    for name, chunks in chunk_bodies.items():
        # Leading zeros and long extensions are legal (a server may still cap them).
        expect = CLIENT_OR_CLOSE | ANSWER if name in ("ext-100kb", "size-64-digits") else CLIENT
        cases.append(Case(f"chunk-{name}", "framing",
                          _post(chunks, "application/json", b"Transfer-Encoding: chunked", length=False), expect))
    cases.append(Case("cl-and-te", "framing", _post(body, "application/json", b"Transfer-Encoding: chunked"),
                      CLIENT_OR_CLOSE | ANSWER))
    return cases


VALID_JSON = [b"[[1.0, 2.0, 3.0, 4.0]]", b'[[1, 2, 3, 4], [5, 6, 7, 8]]', b'{"instances": [[1, 2, 3, 4]]}',
              b'[[0.5, -1e3, 2.25, 0]]', b'[[1, 2, 3, 4]]']


def _json_cases(rng: random.Random, count: int) -> list[Case]:
    bodies: dict[bytes, str] = {}
    for doc in VALID_JSON:
        for cut in range(1, len(doc)):
            if not _json_valid(doc[:cut]):
                bodies.setdefault(doc[:cut], f"truncated-{cut}")
    while len(bodies) < count:
        mutated = bytearray(rng.choice(VALID_JSON))
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.choice(b"[]{},:\"'\\\x00\xff\xc3 abcxyz-+.eE")
        if not _json_valid(bytes(mutated)):  # a mutation that happens to be valid JSON is not a malformed case
            bodies.setdefault(bytes(mutated), "mutated")
    return [Case(f"json-{how}-{i}", "json", _post(body), CLIENT) for i, (body, how) in enumerate(bodies.items())]


def _json_valid(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _csv_cases(rng: random.Random, count: int) -> list[Case]:
    cases = []
    for i in range(count):
        width = rng.randint(1, 6)
        rows = [",".join(str(rng.randint(0, 9)) for _ in range(width)) for _ in range(rng.randint(2, 6))]
        kind = i % 3
        if kind == 0:  # ragged
            at = rng.randrange(1, len(rows))
            rows[at] += ",9"
        elif kind == 1:  # invalid UTF-8 inside a cell
            rows[rng.randrange(len(rows))] += ",\xff"
        else:  # a NUL or a quote that never closes
            rows[rng.randrange(len(rows))] = '"' + rows[0] + "\x00"
        body = "\n".join(rows).encode("latin-1")
        cases.append(Case(f"csv-{('ragged', 'not-utf8', 'nul-quote')[kind]}-{i}", "csv", _post(body, "text/csv"),
                          CLIENT))
    return cases


def _npy(dtype: str) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros(4, dtype=dtype), allow_pickle=False)
    return buffer.getvalue()


def _npy_with_header(header: str, data: bytes, version: bytes = b"\x01\x00") -> bytes:
    """An NPY file with any header text (padded to 64 bytes, as the format asks) and any data."""
    text = header.encode("latin-1")
    padding = 64 - (10 + len(text) + 1) % 64
    text += b" " * padding + b"\n"
    return b"\x93NUMPY" + version + len(text).to_bytes(2, "little") + text + data


def _npy_cases(rng: random.Random, count: int) -> list[Case]:
    valid = _npy("float64")[:-32] + b"\0" * 32
    bodies: dict[bytes, str] = {}
    for cut in range(0, len(valid) - 1, max(1, len(valid) // 60)):
        bodies.setdefault(valid[:cut], f"truncated-{cut}")
    headers = {
        "bad-magic": b"\x93NUMPX" + valid[6:], "version-9": valid[:6] + b"\x09\x00" + valid[8:],
        "header-len-ffff": valid[:8] + b"\xff\xff" + valid[10:], "header-len-0": valid[:8] + b"\0\0" + valid[10:],
    }
    for name, body in headers.items():
        bodies.setdefault(body, name)
    descrs = ["'foo'", "'<f9'", "'<q16'", "''", "None", "[('a', '|O')]", "'|O8'", "[('a', '<f8', (-1,))]",
              "'<U-1'", "'>M8[zz]'", "1", "{'names': 1}"]
    shapes = ["(-1,)", "(4, -4)", "('a',)", "(4.5,)", "None", "(2**64,)", "(10**15, 10**15)", "(1,) * 100", "4"]
    others = ["{'descr': '<f8', 'shape': (4,), }", "{'fortran_order': False, 'shape': (4,), }",
              "{'descr': '<f8', 'fortran_order': 'yes', 'shape': (4,), }", "[1, 2, 3]", "__import__('os')",
              "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), 'extra': 1}", "", "{", "\x00"]
    texts = [f"{{'descr': {d}, 'fortran_order': False, 'shape': (4,), }}" for d in descrs]
    texts += [f"{{'descr': '<f8', 'fortran_order': False, 'shape': {s}, }}" for s in shapes] + others
    for i, text in enumerate(texts):
        bodies.setdefault(_npy_with_header(text, b"\0" * 32), f"header-{i}")
    while len(bodies) < count:
        mutated = bytearray(valid)
        mutated[rng.randrange(6, 70)] = rng.randrange(256)
        bodies.setdefault(bytes(mutated), "mutated")
    cases = []
    for i, (body, how) in enumerate(bodies.items()):
        if _npy_valid(body):
            continue  # numpy reads it: not a malformed case
        cases.append(Case(f"npy-{how}-{i}", "npy", _post(body, "application/x-npy"), CLIENT))
    return cases[:count]


def _npy_valid(body: bytes) -> bool:
    import numpy as np

    try:
        np.lib.format.read_array(io.BytesIO(body), allow_pickle=False)
    except Exception:
        return False
    return True


def _npz_cases() -> list[Case]:
    import zipfile

    cases = []
    for i, body in enumerate([b"", b"PK", b"PK\x05\x06" + b"\0" * 18, b"\x1f\x8b\x08garbage", b"\0" * 100]):
        cases.append(Case(f"npz-not-a-zip-{i}", "npz", _post(body, "application/x-npz"), CLIENT))
    members = {"missing-format": {"data.npy": _npy("float64")}, "format-not-npy": {"format.npy": b"csr"},
               "only-junk": {"junk.txt": b"x"}, "pickled-format": {"format.npy": _npy_with_header(
                   "{'descr': '|O', 'fortran_order': False, 'shape': (), }", b"\x80\x04N.")}}
    for name, files in members.items():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for member, data in files.items():
                archive.writestr(zipfile.ZipInfo(member, date_time=(2000, 1, 1, 0, 0, 0)), data)  # same bytes each run
        cases.append(Case(f"npz-{name}", "npz", _post(buffer.getvalue(), "application/x-npz"), CLIENT))
    return cases


def _media_type_cases() -> list[Case]:
    cases = []
    for i, value in enumerate(["application/x-nonsense", "image/png", "application/", "/json", "text/", "a/b/c",
                               "application/json; charset=nope", "application/json; charset=utf-7x", "\x01",
                               "application/x-npy; charset=undefined", "x" * 5000, "text/csv; charset=bogus"]):
        cases.append(Case(f"content-type-{i}", "media-type", _post(SAMPLE, value), CLIENT))
    for i, value in enumerate(["application/x-nonsense", "image/png", "text/html", "application/xml"]):
        cases.append(Case(f"accept-{i}", "media-type", _post(SAMPLE, "application/json",
                                                             b"Accept: " + value.encode()), CLIENT))
    for i, value in enumerate(["*/*", "application/json;q=0.5, */*;q=0.1", ";q=x", "application/json;;"]):
        cases.append(Case(f"accept-lenient-{i}", "media-type",
                          _post(SAMPLE, "application/json", b"Accept: " + value.encode()), ANSWER | {"406"}))
    return cases


def generated() -> list[Case]:
    rng = random.Random(SEED)
    return [*_request_line_cases(), *_header_cases(), *_framing_cases(), *_json_cases(rng, 460),
            *_csv_cases(rng, 120), *_npy_cases(rng, 160), *_npz_cases(), *_media_type_cases()]


def cases(full: bool = True) -> list[Case]:
    """The shipped cases and the generated ones (all of them, or one in ten for the quick run)."""
    made = generated()
    return _shipped() + (made if full else made[::10])
