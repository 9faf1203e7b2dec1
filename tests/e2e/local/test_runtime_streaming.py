"""InvokeEndpointWithResponseStream end to end: boto3 -> emulator -> our server streaming a generator."""

from __future__ import annotations

import pytest

from tests.e2e.local.runtimeproc import emulator, runtime_client
from tests.e2e.serverproc import ServerProcess, write_model

pytest.importorskip("boto3")

STREAMING = """
import time
from pathlib import Path

def model_fn(model_dir):
    return model_dir

def transform_fn(model, data, content_type, accept):
    text = data.decode() if isinstance(data, (bytes, bytearray)) else data
    if text.startswith("gated:"):
        return _gated(Path(text[6:])), "text/plain"
    if text == "fail-after":
        return _fail_after(), "text/plain"
    return ((token + " ").encode() for token in text.split()), "text/event-stream"

def _gated(gate):
    yield b"first"
    deadline = time.monotonic() + 30
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    yield b"second"

def _fail_after():
    yield b"one"
    yield b"two"
    raise RuntimeError("the model fell over")
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model = write_model(tmp_path_factory.mktemp("streaming") / "model", STREAMING)
    with ServerProcess(["--model-dir", str(model), "--workers", "1"]) as server:
        server.wait_ready()
        with emulator("--endpoint", f"llm={server.url}") as rt:
            yield runtime_client(rt.url)


def test_generator_tokens_arrive_as_payload_parts(client):
    answer = client.invoke_endpoint_with_response_stream(EndpointName="llm", Body=b"the quick brown fox",
                                                         ContentType="text/plain")
    assert answer["ContentType"] == "text/event-stream"
    parts = [event["PayloadPart"]["Bytes"] for event in answer["Body"]]
    assert b"".join(parts) == b"the quick brown fox "


def test_first_token_arrives_before_the_generator_ends(client, tmp_path):
    gate = tmp_path / "gate"
    answer = client.invoke_endpoint_with_response_stream(EndpointName="llm", Body=f"gated:{gate}".encode())
    events = iter(answer["Body"])
    assert next(events)["PayloadPart"]["Bytes"] == b"first"  # while the generator waits for the gate
    gate.touch()
    assert b"".join(e["PayloadPart"]["Bytes"] for e in events) == b"second"
    answer["Body"].close()


def test_model_failing_mid_stream_is_a_model_stream_error(client):
    from botocore.exceptions import EventStreamError

    answer = client.invoke_endpoint_with_response_stream(EndpointName="llm", Body=b"fail-after")
    received = []
    with pytest.raises(EventStreamError) as raised:
        for event in answer["Body"]:
            received.append(event["PayloadPart"]["Bytes"])
    answer["Body"].close()
    assert b"".join(received) == b"onetwo"
    assert raised.value.response["Error"]["Code"] == "ModelStreamError"


def test_non_streaming_client_gets_the_whole_streamed_body(client):
    answer = client.invoke_endpoint(EndpointName="llm", Body=b"a b c", ContentType="text/plain")
    assert answer["Body"].read() == b"a b c "
