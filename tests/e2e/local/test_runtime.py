"""Real boto3 -> ``sagemaker-inference runtime`` -> our server (and a chunked stdlib container for the relay)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.local.runtimeproc import chunked_container, emulator, runtime_client
from tests.e2e.serverproc import ServerProcess, free_port, write_model

pytest.importorskip("boto3")

# A handler that reports what it saw and answers the headers SageMaker relays.
SEEN = """
import json

def handle(data, context):
    if data is None:
        return None
    body = bytes(data[0]["body"]).decode()
    headers = context.request_processor[0].get_request_properties()
    if body.startswith("status:"):
        context.set_response_status(int(body[7:]), "Failed", 0)
        return ["the model refused this input"]
    context.set_response_content_type(0, "application/x-seen")
    attributes = headers.get("X-Amzn-SageMaker-Custom-Attributes")
    context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", f"reply-to={attributes}")
    if body == "new-session":
        context.set_response_header(0, "X-Amzn-SageMaker-New-Session-Id", "s-1; Expires=2030-01-01T00:00:00Z")
    if body == "close-session":
        context.set_response_header(0, "X-Amzn-SageMaker-Closed-Session-Id", headers["X-Amzn-SageMaker-Session-Id"])
    return [json.dumps({"body": body, "headers": headers})]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("runtime")
    model = write_model(base / "model", "")
    (model / "seen.py").write_text(SEEN)
    server = ServerProcess(["--model-dir", str(model), "--handler", "seen.py:handle", "--workers", "1"])
    container = chunked_container()
    try:
        server.wait_ready()
        dead = f"http://127.0.0.1:{free_port()}"
        rt = emulator("--endpoint", f"seen={server.url}", "--endpoint", f"chunky={container.url}",
                      "--endpoint", f"dead={dead}",
                      "--endpoint", f"split/a={server.url}:3", "--endpoint", f"split/b={container.url}:1",
                      "--async-output", str(base / "async"), "--invocation-timeout", "10")
        try:
            yield {"client": runtime_client(rt.url), "server": server, "container": container, "emulator": rt,
                   "base": base}
        finally:
            rt.stop()
    finally:
        container.stop()
        server.stop()


def test_invoke_endpoint_passes_every_header_both_ways(stack):
    answer = stack["client"].invoke_endpoint(
        EndpointName="seen", Body=b"hello", ContentType="text/plain", Accept="application/x-seen",
        CustomAttributes="c000b4f9-df62-4c85-a0bf-7c525f9104a4", InferenceId="inference-42",
        SessionId="s-1", EnableExplanations="`true`")
    seen = json.loads(answer["Body"].read())
    headers = seen["headers"]
    assert seen["body"] == "hello"
    assert headers["Content-Type"] == "text/plain"
    assert headers["Accept"] == "application/x-seen"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "c000b4f9-df62-4c85-a0bf-7c525f9104a4"
    assert headers["X-Amzn-SageMaker-Inference-Id"] == "inference-42"
    assert headers["X-Amzn-SageMaker-Session-Id"] == "s-1"
    assert headers["X-Amzn-SageMaker-Enable-Explanations"] == "`true`"
    assert not any(name.lower() in ("authorization", "x-amz-date") for name in headers)  # signing stays here
    assert answer["ContentType"] == "application/x-seen"
    assert answer["CustomAttributes"] == "reply-to=c000b4f9-df62-4c85-a0bf-7c525f9104a4"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ResponseMetadata"]["RequestId"]


def test_session_headers_are_relayed(stack):
    client = stack["client"]
    opened = client.invoke_endpoint(EndpointName="seen", Body=b"new-session", SessionId="NEW_SESSION")
    assert opened["NewSessionId"] == "s-1; Expires=2030-01-01T00:00:00Z"
    closed = client.invoke_endpoint(EndpointName="seen", Body=b"close-session", SessionId="s-1")
    assert closed["ClosedSessionId"] == "s-1"


@pytest.mark.parametrize("status, kind", [(400, "client"), (404, "client"), (500, "server"), (503, "server")])
def test_container_error_is_model_error_with_the_original_status(stack, status, kind):
    client = stack["client"]
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName="seen", Body=f"status:{status}".encode())
    error = raised.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == status
    assert error["OriginalMessage"] == "the model refused this input"
    assert error["Error"]["Message"].startswith(
        f'Received {kind} error ({status}) from primary with message "the model refused this input".')


def test_unknown_endpoint_is_validation_error(stack):
    client = stack["client"]
    with pytest.raises(client.exceptions.ValidationError) as raised:
        client.invoke_endpoint(EndpointName="nowhere", Body=b"x")
    assert raised.value.response["Error"]["Message"] == "Endpoint nowhere of account 000000000000 not found."
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_body_over_the_limit_is_validation_error_and_the_connection_serves_on(stack):
    client = stack["client"]
    with pytest.raises(client.exceptions.ValidationError) as raised:
        client.invoke_endpoint(EndpointName="seen", Body=b"x" * (6_291_456 + 1))
    assert "6291456" in raised.value.response["Error"]["Message"]
    limit = client.invoke_endpoint(EndpointName="chunky", Body=b"y" * 6_291_456)
    assert len(json.loads(limit["Body"].read())["body"]) == 6_291_456


def test_unreachable_container_is_service_unavailable(stack):
    client = stack["client"]
    with pytest.raises(client.exceptions.ServiceUnavailable) as raised:
        client.invoke_endpoint(EndpointName="dead", Body=b"x")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_target_variant_routes_and_unknown_variant_is_validation_error(stack):
    client = stack["client"]
    for variant in ("a", "b"):
        answer = client.invoke_endpoint(EndpointName="split", Body=b"which", TargetVariant=variant)
        assert answer["InvokedProductionVariant"] == variant
    with pytest.raises(client.exceptions.ValidationError):
        client.invoke_endpoint(EndpointName="split", Body=b"x", TargetVariant="c")


def test_variants_share_traffic_by_weight(stack):
    client = stack["client"]
    counts = {"a": 0, "b": 0}
    for _ in range(200):  # weights 3:1; P(one variant never chosen) < 1e-24
        counts[client.invoke_endpoint(EndpointName="split", Body=b"w")["InvokedProductionVariant"]] += 1
    assert counts["a"] > counts["b"] > 0


# -- InvokeEndpointWithResponseStream ------------------------------------------------------------


def _events(answer):
    return list(answer["Body"])


def test_response_stream_relays_each_chunk_as_payload_parts(stack):
    answer = stack["client"].invoke_endpoint_with_response_stream(EndpointName="chunky", Body=b"chunks:5",
                                                                 Accept="text/event-stream")
    assert answer["ContentType"] == "text/event-stream"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    events = _events(answer)
    assert all(set(event) == {"PayloadPart"} for event in events)
    assert b"".join(event["PayloadPart"]["Bytes"] for event in events) == b"".join(
        b"part-%d\n" % i for i in range(5))


def test_response_stream_is_not_buffered(stack):
    """The container sends its second chunk only after we release it, which we do once the first arrived."""
    answer = stack["client"].invoke_endpoint_with_response_stream(EndpointName="chunky", Body=b"gated")
    events = iter(answer["Body"])
    assert next(events)["PayloadPart"]["Bytes"] == b"first"
    import httpx

    httpx.get(stack["container"].url + "/release", timeout=10)
    assert b"".join(e["PayloadPart"]["Bytes"] for e in events) == b"second"
    answer["Body"].close()


def test_broken_container_stream_ends_with_model_stream_error(stack):
    from botocore.exceptions import EventStreamError

    answer = stack["client"].invoke_endpoint_with_response_stream(EndpointName="chunky", Body=b"broken")
    received = []
    with pytest.raises(EventStreamError) as raised:
        for event in answer["Body"]:
            received.append(event["PayloadPart"]["Bytes"])
    answer["Body"].close()
    assert b"".join(received) == b"partial answer"
    assert raised.value.response["Error"]["Code"] == "ModelStreamError"
    assert "closed before the response ended" in raised.value.response["Error"]["Message"]


def test_response_stream_maps_accept_and_content_type_and_errors(stack):
    client = stack["client"]
    answer = client.invoke_endpoint_with_response_stream(EndpointName="chunky", Body=b"echo",
                                                         ContentType="application/json", Accept="text/csv",
                                                         CustomAttributes="k=v")
    seen = json.loads(b"".join(e["PayloadPart"]["Bytes"] for e in answer["Body"]))
    assert seen["headers"]["Accept"] == "text/csv"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "k=v"
    assert not any(name.lower() == "x-amzn-sagemaker-accept" for name in seen["headers"])
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint_with_response_stream(EndpointName="chunky", Body=b"fail")
    assert raised.value.response["OriginalStatusCode"] == 500
    assert raised.value.response["OriginalMessage"] == "boom"


def test_response_stream_from_our_server(stack):
    """A handler that returns a whole body reaches a streaming client as payload parts too."""
    answer = stack["client"].invoke_endpoint_with_response_stream(EndpointName="seen", Body=b"streamed",
                                                                 CustomAttributes="x=1")
    assert answer["ContentType"] == "application/x-seen"
    assert answer["CustomAttributes"] == "reply-to=x=1"
    assert json.loads(b"".join(e["PayloadPart"]["Bytes"] for e in answer["Body"]))["body"] == "streamed"


# -- InvokeEndpointAsync -------------------------------------------------------------------------


def _wait_for(path: Path, timeout: float = 30.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_bytes()
        time.sleep(0.02)
    raise TimeoutError(f"{path} was not written within {timeout} s")


def _local(uri: str) -> Path:
    assert uri.startswith("file:///")
    return Path(uri[len("file://"):])


def test_async_writes_the_output_file(stack):
    source = stack["base"] / "input.txt"
    source.write_bytes(b"async hello")
    answer = stack["client"].invoke_endpoint_async(EndpointName="seen", InputLocation=source.as_uri(),
                                                   ContentType="text/plain", Accept="application/x-seen",
                                                   CustomAttributes="a=1", InferenceId="job-1")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert answer["InferenceId"] == "job-1"
    output, failure = _local(answer["OutputLocation"]), _local(answer["FailureLocation"])
    assert output.is_relative_to(stack["base"] / "async")
    seen = json.loads(_wait_for(output))
    assert seen["body"] == "async hello"
    assert seen["headers"]["Accept"] == "application/x-seen"
    assert seen["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "a=1"
    assert not failure.exists()


def test_async_failure_file_has_the_container_answer(stack):
    source = stack["base"] / "bad.txt"
    source.write_bytes(b"status:422")
    answer = stack["client"].invoke_endpoint_async(EndpointName="seen", InputLocation=str(source))
    assert _wait_for(_local(answer["FailureLocation"])) == b"the model refused this input"
    assert not _local(answer["OutputLocation"]).exists()


def test_async_invocation_timeout_fails_the_request(stack):
    source = stack["base"] / "slow.txt"
    source.write_bytes(b"slow")
    answer = stack["client"].invoke_endpoint_async(EndpointName="chunky", InputLocation=source.as_uri(),
                                                   InvocationTimeoutSeconds=1, RequestTTLSeconds=60)
    assert b"timed out" in _wait_for(_local(answer["FailureLocation"]))


def test_async_output_path_extension_and_filename(stack):
    source = stack["base"] / "named.txt"
    source.write_bytes(b"named")
    answer = stack["client"].invoke_endpoint_async(EndpointName="seen", InputLocation=source.as_uri(),
                                                   S3OutputPathExtension="day/1", Filename="result.json")
    assert answer["OutputLocation"] == (stack["base"] / "async" / "day" / "1" / "result.json").as_uri()
    assert json.loads(_wait_for(_local(answer["OutputLocation"])))["body"] == "named"


def test_async_bad_input_location_is_validation_error(stack):
    client = stack["client"]
    for location in ("s3://bucket/key", str(stack["base"] / "missing.txt")):
        with pytest.raises(client.exceptions.ValidationError):
            client.invoke_endpoint_async(EndpointName="seen", InputLocation=location)


def test_body_over_the_read_bound_is_refused_at_once_in_the_api_error_shape(stack):
    """Over 64 MiB declared: answered from the head alone (nothing buffered), then the connection closes."""
    import socket

    port = int(stack["emulator"].url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /endpoints/seen/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 70000000\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"x-amzn-ErrorType: ValidationError" in head
    assert json.loads(body)["Message"]
