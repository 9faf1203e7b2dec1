"""The smallest end-to-end check: the example model serves a prediction."""

from __future__ import annotations


def test_example_model_predicts(serve):
    server = serve("--example")
    response = server.client.post("/invocations", content=b"[[1, 2, 3, 4]]",
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == [[1.5, 2.0]]
    assert response.headers["content-type"] == "application/json"


def test_echo_round_trip(serve, model_dir):
    from tests.e2e.conftest import ECHO_MODEL

    server = serve("--model-dir", str(model_dir(ECHO_MODEL)))
    response = server.client.post("/invocations", json={"a": [1, 2]})
    assert response.status_code == 200
    assert response.json() == {"a": [1, 2]}
