"""Frames between frontend and worker: round trips, any split of the byte stream, bad input."""

from __future__ import annotations

import struct

import pytest

from sagemaker_inference.server.workers import protocol as p

REQUEST = p.Request(
    b"0f1e2d3c-0000-4000-8000-000000000001",
    [(b"Content-Type", b"application/json"), (b"X-Amzn-SageMaker-Custom-Attributes", b"trace=1; a=b"),
     (b"X-Empty", b""), (b"X-Utf8", "été".encode())],
    [(b"model_name", b"m"), (b"k", b"")],
    b'{"instances": [1, 2, 3]}',
)
BINARY_REQUEST = p.Request(b"id-2", [], [], bytes(range(256)) * 4)

MESSAGES = [
    p.Load("model", "/opt/ml/model", "sagemaker_inference.default_handler_service", 4, -1),
    p.Load("m\u00e9", "/tmp/dir with space", "path/to/file.py:handle", 1, 0),
    p.Loaded(200, "loaded model model. [PID]:1234", 1234),
    p.Loaded(507, "System out of memory", 99),
    p.Loaded(500, "", 1),
    p.Batch(1, [REQUEST]),
    p.Batch(2**40, [REQUEST, BINARY_REQUEST, p.Request(b"id-3", [], [], b"")]),
    p.Reply(1, [p.Response(200, b"", [(b"content-type", b"application/json")], b"[1, 2]")]),
    p.Reply(7, [p.Response(201, b"Created", [(b"X-Custom", b"v"), (b"content-type", b"text/csv")], b"1,2\n"),
                p.Response(415, b"Unsupported Media Type", [], b""),
                p.Response(200, b"", [], bytes(range(256)))]),
    p.BatchFailed(3, 503, "Prediction failed"),
    p.BatchFailed(4, 507, "Out of resources \u2014 details"),
    p.StatsRequest(),
    p.WorkerStats(123_456_789, 1.25),
    p.WorkerStats(2**40, 0.0, 3, 0.0125, [0, 1, 2] + [0] * (len(p.DURATION_BUCKETS) - 2),
                  [p.HandlerMetric("PredictionTime", "Milliseconds", 12.5),
                   p.HandlerMetric("Hits", "Count", 3.0, counter=True), p.HandlerMetric("caf\u00e9", "", -1.0)]),
    p.Loaded(200, "ok", 7, '{"MaxPayloadInMB": 6}', p.CAN_BIDI | p.CAN_CLOSE_SESSION),
    p.Reply(9, [p.Response(200, b"OK", [(b"content-type", b"text/event-stream")], b"", p.WORKER_CHANNEL_BIT | 5),
                p.Response(200, b"", [], b"plain")]),
    p.ChannelOpen(3, REQUEST),
    p.ChannelOpen(2**62, p.Request(b"id", [], [], b"")),
    p.ChannelData(p.WORKER_CHANNEL_BIT | 1, b"data: token\n\n"),
    p.ChannelData(4, "h\u00e9llo".encode(), binary=False),
    p.ChannelData(4, b""),
    p.ChannelCredit(p.WORKER_CHANNEL_BIT | 1, 1),
    p.ChannelCredit(8, 2**32 - 1),
    p.ChannelEnd(4),
    p.ChannelEnd(p.WORKER_CHANNEL_BIT | 9, 1011, "ValueError: bad token \u2014 details"),
    p.CloseSession(1, "a1-b2-c3"),
    p.SessionClosed(1),
    p.SessionClosed(2, 500, "close_session_fn raised KeyError"),
]


def fields(message: object) -> object:
    """A plain view of a message (decoded requests may be lazy objects of another class)."""
    if isinstance(message, p.Batch):
        return ("Batch", message.batch_id, [(r.request_id, list(r.headers), list(r.params), r.body)
                                            for r in message.requests])
    if isinstance(message, p.Reply):
        return ("Reply", message.batch_id, [(r.status, r.reason, list(r.headers), r.body)
                                            for r in message.responses])
    return message


@pytest.mark.parametrize("message", MESSAGES, ids=repr)
def test_round_trip(message):
    [decoded] = p.FrameReader().feed(p.encode(message))
    assert fields(decoded) == fields(message)
    assert decoded == message


@pytest.mark.parametrize("message", MESSAGES, ids=repr)
def test_round_trip_byte_by_byte(message):
    reader = p.FrameReader()
    frame = p.encode(message)
    decoded = []
    for i in range(len(frame)):
        decoded += reader.feed(frame[i:i + 1])
        if i < len(frame) - 1:
            assert decoded == []
            assert reader.buffered == i + 1
    assert [fields(m) for m in decoded] == [fields(message)]
    assert reader.buffered == 0


def test_many_frames_in_one_chunk_come_back_in_order():
    stream = b"".join(p.encode(m) for m in MESSAGES)
    assert [fields(m) for m in p.FrameReader().feed(stream)] == [fields(m) for m in MESSAGES]


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 6, 17, 100])
def test_any_split_point(cut):
    stream = b"".join(p.encode(m) for m in MESSAGES)
    reader = p.FrameReader()
    decoded = []
    for i in range(0, len(stream), cut):
        decoded += reader.feed(stream[i:i + cut])
    assert [fields(m) for m in decoded] == [fields(m) for m in MESSAGES]


def test_large_body_streamed_in_many_reads():
    body = bytes(range(256)) * 20_000  # ~5 MB
    frame = p.encode_batch(9, [p.Request(b"big", [(b"Content-Type", b"application/x-npy")], [], body)])
    reader = p.FrameReader()
    decoded = []
    for i in range(0, len(frame), 65536):
        decoded += reader.feed(frame[i:i + 65536])
    [batch] = decoded
    assert batch.batch_id == 9
    assert batch.requests[0].body == body


def test_encode_helpers_match_encode():
    assert p.encode_batch(5, [REQUEST]) == p.encode(p.Batch(5, [REQUEST]))
    responses = [p.Response(200, b"", [], b"x")]
    assert p.encode_reply(5, responses) == p.encode(p.Reply(5, responses))


def test_read_one():
    reader = p.FrameReader()
    frame = p.encode(p.Loaded(200, "ok", 1))
    assert p.read_one(reader, frame[:3]) is None
    assert p.read_one(reader, frame[3:]) == p.Loaded(200, "ok", 1)


def test_encode_refuses_other_objects():
    with pytest.raises(TypeError):
        p.encode(("load", "model"))  # type: ignore[arg-type]


# -- truncated and garbage input -------------------------------------------------------------------


def test_truncated_frame_waits_without_error():
    frame = p.encode(p.Batch(1, [REQUEST]))
    reader = p.FrameReader()
    assert reader.feed(frame[:-1]) == []
    assert reader.buffered == len(frame) - 1
    assert len(reader.feed(frame[-1:])) == 1


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack("!IB", len(payload) + 1, kind) + payload


def test_worker_stats_defaults_to_one_empty_bucket_more_than_bounds():
    stats = p.WorkerStats(1, 0.5)
    assert stats.handle_buckets == [0] * (len(p.DURATION_BUCKETS) + 1)
    assert list(p.DURATION_BUCKETS) == sorted(p.DURATION_BUCKETS)


def test_stats_travel_between_batches_in_one_chunk():
    stream = p.encode(p.Batch(1, [REQUEST])) + p.encode(p.StatsRequest()) + p.encode(p.Batch(2, [REQUEST]))
    kinds = [type(m) for m in p.FrameReader().feed(stream)]
    assert kinds == [p.Batch, p.StatsRequest, p.Batch]


GARBAGE = {
    "zero-length": struct.pack("!IB", 0, p.KIND_LOAD),
    "over-max-frame": struct.pack("!IB", 2**31 + 1, p.KIND_BATCH),
    "unknown-kind": _frame(99, b"abc"),
    "loaded-too-short": _frame(p.KIND_LOADED, b"\x00\x00"),
    "failed-too-short": _frame(p.KIND_FAILED, b"\x00" * 5),
    "batch-count-too-high": _frame(p.KIND_BATCH, struct.pack("!QI", 1, 3)),
    "batch-body-past-frame": _frame(p.KIND_BATCH, struct.pack("!QI", 1, 1) + struct.pack("!BIII", 1, 0, 0, 50) + b"i"),
    "load-strings-truncated": _frame(p.KIND_LOAD, struct.pack("!ii", 1, -1) + struct.pack("!3I", 5, 5, 5) + b"abc"),
    "loaded-invalid-utf8": _frame(p.KIND_LOADED, struct.pack("!ii", 200, 1) + b"\xff\xfe"),
    "failed-invalid-utf8": _frame(p.KIND_FAILED, struct.pack("!QH", 1, 500) + b"\xff"),
    "load-invalid-utf8": _frame(p.KIND_LOAD, struct.pack("!ii", 1, -1) + struct.pack("!3I", 1, 1, 1) + b"\xffab"),
    "stats-request-with-payload": _frame(p.KIND_STATS_REQUEST, b"x"),
    "stats-too-short": _frame(p.KIND_STATS, struct.pack("!Qd", 1, 0.0)),
    "stats-buckets-past-frame": _frame(p.KIND_STATS, struct.pack("!QdIdH", 1, 0.0, 1, 0.1, 9) + b"\x00" * 8),
    "stats-metric-truncated": _frame(p.KIND_STATS, struct.pack("!QdIdH", 1, 0.0, 0, 0.0, 0) + struct.pack("!H", 1)
                                     + struct.pack("!Bd", 0, 1.0) + struct.pack("!2I", 4, 4) + b"ab"),
}
# A reply frame whose declared length covers one byte more than its fields.
_reply = p.encode_reply(1, [p.Response(200, b"", [], b"x")])
GARBAGE["reply-trailing-bytes"] = struct.pack("!I", struct.unpack("!I", _reply[:4])[0] + 1) + _reply[4:] + b"\x00"


@pytest.mark.parametrize("frame", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_is_a_protocol_error(frame):
    with pytest.raises(p.ProtocolError):
        p.FrameReader().feed(frame)


def test_garbage_after_a_good_frame_is_still_an_error():
    with pytest.raises(p.ProtocolError):
        p.FrameReader().feed(p.encode(p.Loaded(200, "ok", 1)) + _frame(99, b""))


def test_max_frame_is_enforced_before_buffering():
    reader = p.FrameReader(max_frame=1024)
    with pytest.raises(p.ProtocolError):
        reader.feed(struct.pack("!IB", 1025, p.KIND_BATCH))


def test_channel_data_fast_path_matches_the_message_encoding():
    assert p.encode_channel_data(5, b"xyz", False) == p.encode(p.ChannelData(5, b"xyz", binary=False))


def test_stream_frames_interleave_with_replies_in_one_read():
    """What one worker write may hold: a reply with a stream head, chunks, credits, the end."""
    channel = p.WORKER_CHANNEL_BIT | 1
    messages = [p.Reply(1, [p.Response(200, b"", [], b"", channel)]), p.ChannelData(channel, b"a"),
                p.ChannelData(channel, b"b"), p.ChannelEnd(channel), p.Reply(2, [p.Response(200, b"", [], b"x")])]
    decoded = p.FrameReader().feed(b"".join(p.encode(m) for m in messages))
    assert decoded == messages
    assert [getattr(r, "channel", None) for r in decoded[0].responses] == [channel]


@pytest.mark.parametrize("message", [p.ChannelData(1, b"abc"), p.ChannelEnd(1, 1000, "x"), p.ChannelOpen(1, REQUEST)],
                         ids=repr)
def test_truncated_channel_messages_are_protocol_errors(message):
    frame = p.encode(message)
    kind = frame[4]
    short = struct.pack("!IB", 5, kind) + frame[5:9]  # a frame that ends inside the fixed head
    with pytest.raises(p.ProtocolError):
        p.FrameReader().feed(short)
