"""RequestAssembler: bytes in, requests (or one fatal error) out.

Every framing test runs twice: the whole input in one ``feed``, and one byte per ``feed`` (the
worst split a network can produce). Both must give the same events.
"""

from __future__ import annotations

import pytest

from sagemaker_inference.server.http.parser import ContinueRequested, HTTPRequest, ParseError, RequestAssembler

LIMIT = 100


def feed_all(data: bytes, max_body: int = LIMIT) -> list:
    return RequestAssembler(max_body).feed(data)


def feed_bytewise(data: bytes, max_body: int = LIMIT) -> list:
    assembler = RequestAssembler(max_body)
    events = []
    for i in range(len(data)):
        events += assembler.feed(data[i:i + 1])
    return events


@pytest.fixture(params=[feed_all, feed_bytewise], ids=["one-chunk", "byte-by-byte"])
def feed(request):
    return request.param


def summary(events: list) -> list:
    """Comparable view of events."""
    out = []
    for event in events:
        if isinstance(event, HTTPRequest):
            out.append((event.method, event.path, event.query, event.body, event.keep_alive))
        elif isinstance(event, ParseError):
            out.append(("error", event.status))
        else:
            out.append(type(event).__name__)
    return out


def test_simple_get(feed):
    [request] = feed(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert isinstance(request, HTTPRequest)
    assert (request.method, request.path, request.query, request.body) == (b"GET", b"/ping", b"", b"")
    assert request.keep_alive is True
    assert request.headers == [(b"Host", b"localhost")]


def test_header_names_keep_client_case_and_lookup_is_case_insensitive(feed):
    [request] = feed(b"POST /invocations HTTP/1.1\r\nContent-Type: text/csv\r\nX-Amzn-SageMaker-Custom-Attributes: "
                     b"a=1\r\naccept: application/json\r\nContent-Length: 0\r\n\r\n")
    assert [name for name, _ in request.headers] == [b"Content-Type", b"X-Amzn-SageMaker-Custom-Attributes",
                                                     b"accept", b"Content-Length"]
    assert request.header(b"content-type") == b"text/csv"
    assert request.header(b"x-amzn-sagemaker-custom-attributes") == b"a=1"
    assert request.header(b"missing") is None


def test_repeated_header_lookup_gives_the_last_value(feed):
    [request] = feed(b"GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n")
    assert request.header(b"x-a") == b"2"
    assert request.headers == [(b"X-A", b"1"), (b"x-a", b"2")]


def test_query_string_is_split_from_the_path(feed):
    [request] = feed(b"POST /invocations?model_name=m&x=%20y HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
    assert (request.path, request.query, request.body) == (b"/invocations", b"model_name=m&x=%20y", b"hi")


def test_pipelined_requests_in_one_chunk_come_back_in_order(feed):
    data = (b"GET /ping HTTP/1.1\r\n\r\n"
            b"POST /invocations HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
            b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
            b"GET /execution-parameters HTTP/1.1\r\n\r\n")
    assert summary(feed(data)) == [
        (b"GET", b"/ping", b"", b"", True),
        (b"POST", b"/invocations", b"", b"abc", True),
        (b"POST", b"/invocations", b"", b"de", True),
        (b"GET", b"/execution-parameters", b"", b"", True),
    ]


def test_a_partial_request_waits_for_the_rest():
    assembler = RequestAssembler(LIMIT)
    assert assembler.idle
    assert assembler.feed(b"POST /invocations HTTP/1.1\r\nContent-Length: 5\r\n\r\nab") == []
    assert not assembler.idle
    [request] = assembler.feed(b"cde")
    assert request.body == b"abcde"
    assert assembler.idle


def test_second_request_split_across_feeds():
    assembler = RequestAssembler(LIMIT)
    first = assembler.feed(b"GET /a HTTP/1.1\r\n\r\nGET /b HT")
    assert summary(first) == [(b"GET", b"/a", b"", b"", True)]
    assert not assembler.idle
    assert summary(assembler.feed(b"TP/1.1\r\n\r\n")) == [(b"GET", b"/b", b"", b"", True)]


def test_chunked_body_is_assembled(feed):
    data = (b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n5;ext=1\r\n12345\r\n0\r\nTrailer: x\r\n\r\n")
    [request] = feed(data)
    assert request.body == b"abc12345"


def test_binary_body_passes_untouched(feed):
    body = bytes(range(256)) * 2
    [request] = feed(b"POST /invocations HTTP/1.1\r\nContent-Length: 512\r\n\r\n" + body, 1024)
    assert request.body == body


def test_body_of_exactly_the_limit_passes(feed):
    [request] = feed(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 100)
    assert len(request.body) == 100


def test_declared_size_over_the_limit_is_413_before_the_body_arrives():
    assembler = RequestAssembler(LIMIT)
    [error] = assembler.feed(b"POST /invocations HTTP/1.1\r\nContent-Length: 101\r\n\r\n")
    assert isinstance(error, ParseError)
    assert error.status == 413
    assert "101" in error.message and "100" in error.message
    assert assembler.feed(b"x" * 101) == []  # nothing more is parsed or buffered


def test_streamed_chunked_size_over_the_limit_is_413_as_soon_as_it_passes():
    assembler = RequestAssembler(LIMIT)
    assert assembler.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + b"a" * 64 + b"\r\n") == []
    [error] = assembler.feed(b"40\r\n" + b"b" * 64)  # no terminating chunk: 413 anyway
    assert (type(error), error.status) == (ParseError, 413)
    assert assembler.feed(b"\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n") == []


def test_chunked_over_the_limit_byte_by_byte():
    data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"a\r\n" + b"x" * 10 + b"\r\n" for _ in range(11)) + b"0\r\n\r\n"
    assert summary(feed_bytewise(data)) == [("error", 413)]


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX\x00A: ab\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the plain port
    ],
    ids=["garbage", "version", "no-colon", "obs-fold", "cl-text", "cl-negative", "cl-twice", "cl-and-chunked",
         "bad-chunk-size", "nul-in-value", "nul-in-name", "tls"],
)
def test_malformed_is_400_and_final(feed, data):
    assert summary(feed(data)) == [("error", 400)]


def test_nothing_is_parsed_after_an_error():
    assembler = RequestAssembler(LIMIT)
    assert summary(assembler.feed(b"GARBAGE\r\n\r\n")) == [("error", 400)]
    assert assembler.feed(b"GET / HTTP/1.1\r\n\r\n") == []


def test_a_valid_request_before_garbage_is_still_delivered(feed):
    assert summary(feed(b"GET /a HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n")) == [(b"GET", b"/a", b"", b"", True), ("error", 400)]


def test_oversized_head_is_refused():
    assert summary(feed_all(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")) == [("error", 414)]
    assert summary(feed_all(b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n")) == [("error", 431)]


def test_expect_100_continue_within_the_limit(feed):
    events = feed(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc")
    assert isinstance(events[0], ContinueRequested)
    assert isinstance(events[1], HTTPRequest)
    assert events[1].expect_continue is True
    assert events[1].body == b"abc"


def test_expect_100_continue_arrives_before_the_body():
    assembler = RequestAssembler(LIMIT)
    [event] = assembler.feed(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n")
    assert isinstance(event, ContinueRequested)
    [request] = assembler.feed(b"abc")
    assert request.body == b"abc"


def test_expect_100_continue_over_the_limit_is_413_without_continue(feed):
    assert summary(feed(b"POST / HTTP/1.1\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n")) == [("error", 413)]


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", True),
    ],
)
def test_keep_alive(feed, head, keep_alive):
    [request] = feed(head)
    assert request.keep_alive is keep_alive


def test_http_1_0_keep_alive_pipelined(feed):
    data = b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    assert summary(feed(data)) == [(b"GET", b"/a", b"", b"", True), (b"GET", b"/b", b"", b"", True)]


def test_upgrade_is_ignored_and_pipelined_requests_after_it_are_kept(feed):
    data = (b"GET /ping HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: irc/6.9\r\n\r\n"
            b"GET /ping2 HTTP/1.1\r\n\r\n")
    events = feed(data)
    assert summary(events) == [(b"GET", b"/ping", b"", b"", True), (b"GET", b"/ping2", b"", b"", True)]
    assert not any(e.upgrade for e in events)


def test_websocket_upgrade_stops_http_and_keeps_the_bytes_after_it():
    assembler = RequestAssembler(1000)
    head = (b"GET /invocations-bidirectional-stream?a=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
            b"Upgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    frames = b"\x81\x85\x00\x00\x00\x00hello"
    [request] = assembler.feed(head + frames[:3])
    assert request.upgrade and request.path == b"/invocations-bidirectional-stream" and request.query == b"a=1"
    assert assembler.feed(frames[3:] + b"GET /ping HTTP/1.1\r\n\r\n") == []
    assert assembler.upgrade_rest == frames + b"GET /ping HTTP/1.1\r\n\r\n"


def test_websocket_upgrade_on_post_is_an_ordinary_request(feed):
    data = b"POST /x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n{}"
    [request] = feed(data)
    assert not request.upgrade and request.body == b"{}"


def test_h2c_upgrade_post_keeps_its_body(feed):
    # curl --http2 on an http:// URL sends exactly this shape.
    data = (b"POST /invocations HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\n[1,2]"
            b"GET /ping HTTP/1.1\r\n\r\n")
    assert summary(feed(data)) == [(b"POST", b"/invocations", b"", b"[1,2]", True), (b"GET", b"/ping", b"", b"", True)]


def test_chunked_upgrade_request_is_refused(feed):
    data = (b"POST / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n")
    assert summary(feed(data)) == [("error", 400)]


def test_trailer_fields_do_not_become_headers(feed):
    [request, ping] = feed(b"POST /invocations HTTP/1.1\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"3\r\nabc\r\n0\r\nContent-Type: text/evil\r\nX-Amzn-SageMaker-Target-Model: b\r\n\r\n"
                           b"GET /ping HTTP/1.1\r\n\r\n")
    assert request.body == b"abc"
    assert request.headers == [(b"Content-Type", b"text/csv"), (b"Transfer-Encoding", b"chunked")]
    assert request.header(b"x-amzn-sagemaker-target-model") is None
    assert (ping.method, ping.path, ping.headers) == (b"GET", b"/ping", [])


def test_trailer_fields_count_towards_the_head_limit():
    trailer = b"X-Pad: " + b"a" * 200 + b"\r\n"
    [error] = RequestAssembler(100, max_head=1000).feed(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n" + trailer * 10 + b"\r\n")
    assert (error.status,) == (431,)


ID_HEADER = b"x-amzn-sagemaker-inference-id"


@pytest.mark.parametrize("split", [False, True], ids=["one-chunk", "byte-by-byte"])
def test_the_id_header_is_picked_up_while_parsing(split: bool) -> None:
    data = (b"POST /a HTTP/1.1\r\nX-Amzn-SageMaker-Inference-Id: first\r\nContent-Length: 0\r\n"
            b"x-amzn-sagemaker-inference-id: last\r\n\r\n"
            b"POST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assembler = RequestAssembler(LIMIT, id_header=ID_HEADER)
    chunks = [data[i:i + 1] for i in range(len(data))] if split else [data]
    events = [event for chunk in chunks for event in assembler.feed(chunk)]
    assert [e.id_value for e in events] == [b"last", None]  # the last value, as HTTPRequest.header; not carried over


def test_a_trailer_does_not_set_the_id() -> None:
    data = (b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
            b"X-Amzn-SageMaker-Inference-Id: smuggled\r\n\r\n")
    (request,) = RequestAssembler(LIMIT, id_header=ID_HEADER).feed(data)
    assert request.body == b"x" and request.id_value is None


def test_without_an_id_header_nothing_is_picked_up() -> None:
    data = b"POST /a HTTP/1.1\r\nX-Amzn-SageMaker-Inference-Id: abc\r\nContent-Length: 0\r\n\r\n"
    (request,) = RequestAssembler(LIMIT).feed(data)
    assert request.id_value is None and request.header(ID_HEADER) == b"abc"
