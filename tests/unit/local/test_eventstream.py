"""Our event-stream encoder, decoded by botocore's own parser (the client every user runs)."""

from __future__ import annotations

import json

import pytest

from sagemaker_inference.local import eventstream

botocore_eventstream = pytest.importorskip("botocore.eventstream")


def decode(data: bytes, pieces: int = 1) -> list:
    buffer = botocore_eventstream.EventStreamBuffer()
    step = max(1, len(data) // pieces)
    messages = []
    for i in range(0, len(data), step):  # fed in arbitrary pieces, as a socket delivers them
        buffer.add_data(data[i:i + step])
        messages.extend(buffer)
    return messages


@pytest.mark.parametrize("payload", [b"", b"x", b"\x00\xff" * 1000, "héllo ✓".encode()])
@pytest.mark.parametrize("pieces", [1, 3, 50])
def test_payload_part_round_trips(payload, pieces):
    [message] = decode(eventstream.event("PayloadPart", payload), pieces)
    assert message.payload == payload
    assert message.headers == {":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                               ":message-type": "event"}
    assert message.to_response_dict()["status_code"] == 200


def test_many_messages_in_one_buffer():
    data = b"".join(eventstream.event("PayloadPart", b"part %d" % i) for i in range(100))
    assert [m.payload for m in decode(data, pieces=7)] == [b"part %d" % i for i in range(100)]


def test_exception_message_is_an_error_for_botocore():
    [message] = decode(eventstream.exception("ModelStreamError", {"Message": "gone", "ErrorCode": "StreamBroken"}))
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "ModelStreamError"
    assert json.loads(message.payload) == {"Message": "gone", "ErrorCode": "StreamBroken"}
    assert message.to_response_dict()["status_code"] == 400


def test_checksums_are_checked_by_botocore():
    data = bytearray(eventstream.event("PayloadPart", b"payload"))
    data[-5] ^= 1  # flip a payload bit: the message CRC no longer matches
    with pytest.raises(botocore_eventstream.ChecksumMismatch):
        decode(bytes(data))
    data = bytearray(eventstream.event("PayloadPart", b"payload"))
    data[1] ^= 1  # flip a length bit: the prelude CRC no longer matches
    with pytest.raises(botocore_eventstream.ChecksumMismatch):
        decode(bytes(data))


def test_large_chunks_are_split_under_botocore_payload_cap():
    chunk = bytes(range(256)) * (eventstream.MAX_PAYLOAD_LENGTH // 256 + 10)
    messages = decode(b"".join(eventstream.payload_parts(chunk)), pieces=4)
    assert len(messages) == 2
    assert b"".join(m.payload for m in messages) == chunk
    assert eventstream.payload_parts(b"") == []


def test_oversized_payload_is_refused():
    with pytest.raises(ValueError, match="over"):
        eventstream.encode_message([], b"x" * (eventstream.MAX_PAYLOAD_LENGTH + 1))
