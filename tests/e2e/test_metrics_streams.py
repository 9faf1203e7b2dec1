"""Streamed responses and bidirectional sessions in ``/metrics``: each counted once by how it
ended, chunks, and what is under way, with the streaming and bidi tests' models."""

from __future__ import annotations

import httpx

from tests.e2e.rawhttp import RawConnection
from tests.e2e.test_metrics import samples, value, wait_for_scrape
from tests.e2e.test_server_faults import wait_for
from tests.e2e.test_streaming import STREAM_MODEL, ChunkedReader, post_json


def test_streams_are_counted_by_outcome(serve, model_dir) -> None:
    directory = model_dir(STREAM_MODEL)
    server = serve("--model-dir", str(directory), workers=1)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/invocations", json={"mode": "count", "n": 5}).text == "0\n1\n2\n3\n4\n"
        try:
            client.post("/invocations", json={"mode": "fail_after"})
        except httpx.RemoteProtocolError:
            pass  # the body ends abnormally after two chunks
        conn = RawConnection(server.port)
        try:
            conn.send(post_json({"mode": "forever", "id": "gone"}))
            reader = ChunkedReader(conn)
            assert reader.head()[0] == 200
            assert reader.chunk() == b"tick"
            during = wait_for_scrape(server, lambda f: value(f, "sagemaker_inference_streams_active",
                                                             model="model") == 1)
            assert value(during, "sagemaker_inference_streams_active", model="model") == 1
        finally:
            conn.sock.close()
        wait_for(lambda: (directory / "closed-gone").exists(), what="the generator closed")
        families = wait_for_scrape(server, lambda f: len(samples(f, "sagemaker_inference_streams",
                                                                 "sagemaker_inference_streams_total")) == 3)
    outcomes = samples(families, "sagemaker_inference_streams", "sagemaker_inference_streams_total")
    assert outcomes == {(("model", "model"), ("outcome", "completed")): 1.0,
                        (("model", "model"), ("outcome", "failed")): 1.0,
                        (("model", "model"), ("outcome", "client_gone")): 1.0}
    chunks = value(families, "sagemaker_inference_stream_chunks", "sagemaker_inference_stream_chunks_total",
                   model="model")
    assert chunks >= 5 + 2 + 1
    assert value(families, "sagemaker_inference_streams_active", model="model") == 0
    assert value(families, "sagemaker_inference_bidi_sessions_active", model="model") == 0
    assert value(families, "sagemaker_inference_stateful_sessions_active", model="model") == 0
    assert value(families, "sagemaker_inference_requests", "sagemaker_inference_requests_total",
                 model="model", status="200") == 3  # a stream's request is counted at its head


def test_bidirectional_sessions_are_counted_by_outcome(serve, model_dir) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from tests.e2e.test_bidi import BIDI_MODEL, ws_url

    directory = model_dir(BIDI_MODEL)
    server = serve("--model-dir", str(directory), workers=1)
    with connect(ws_url(server, "id=open"), open_timeout=10) as ws:
        ws.recv(timeout=10)
        families = wait_for_scrape(server, lambda f: value(f, "sagemaker_inference_bidi_sessions_active",
                                                           model="model") == 1)
        assert value(families, "sagemaker_inference_bidi_sessions_active", model="model") == 1
    wait_for(lambda: (directory / "ended-open").exists(), what="the session ended")
    for name, message in (("bye", "bye"), ("boom", "boom")):
        with connect(ws_url(server, f"id={name}"), open_timeout=10) as ws:
            ws.recv(timeout=10)
            ws.send(message)
            try:
                ws.recv(timeout=10)
            except ConnectionClosed:
                pass  # the model ended the session
        wait_for(lambda name=name: (directory / f"ended-{name}").exists(), what=f"session {name} ended")
    families = wait_for_scrape(server, lambda f: len(samples(f, "sagemaker_inference_bidi_sessions",
                                                             "sagemaker_inference_bidi_sessions_total")) == 3)
    assert samples(families, "sagemaker_inference_bidi_sessions", "sagemaker_inference_bidi_sessions_total") == {
        (("model", "model"), ("outcome", "closed_by_client")): 1.0,
        (("model", "model"), ("outcome", "closed_by_model")): 1.0,
        (("model", "model"), ("outcome", "failed")): 1.0}
    assert value(families, "sagemaker_inference_bidi_sessions_active", model="model") == 0
