from __future__ import annotations

import re
import socket

import pytest

from sagemaker_inference.context import Context, Dimension, Metric, MetricsStore, PredictionException, RequestProcessor


@pytest.fixture
def context():
    context = Context("model", "/opt/ml/model", {"manifest": 1}, 4, None, "2.0.0")
    context._begin_batch({0: "a", 1: "b"}, [{"Accept": "text/csv"}, {"accept": "application/json"}])
    return context


def test_system_properties():
    context = Context("m", "/dir", None, 2, 0, "1.1.11")
    assert context.system_properties == {
        "model_dir": "/dir",
        "gpu_id": 0,
        "batch_size": 2,
        "server_name": "MMS",
        "server_version": "1.1.11",
    }
    assert context._system_properties is context.system_properties
    assert (context.model_name, context.manifest, context.request_ids, context.request_processor) == (
        "m",
        None,
        None,
        None,
    )


def test_request_accessors(context):
    assert context.get_request_id() == "a"
    assert context.get_request_id(1) == "b"
    assert context.get_request_header(0, "Accept") == "text/csv"
    assert context.get_request_header(0, "accept") is None  # exact-case lookup, as MMS
    assert context.get_all_request_header(1) == {"accept": "application/json"}
    assert context.request_processor[1].get_request_properties() == {"accept": "application/json"}


def test_response_accessors(context):
    assert context.get_response_status(1) == (200, None)
    context.set_response_status(404, "Nope", 1)
    context.set_response_content_type(1, "text/plain")
    context.set_response_header(1, "X-Thing", "v")
    assert context.get_response_status(1) == (404, "Nope")
    assert context.get_response_status(0) == (200, None)
    assert context.get_response_content_type(1) == "text/plain"
    assert context.get_response_headers(1) == {"content-type": "text/plain", "X-Thing": "v"}
    context.set_all_response_status(503, "down")
    assert [context.get_response_status(i) for i in range(2)] == [(503, "down"), (503, "down")]


def test_set_response_status_outside_a_batch_does_nothing():
    Context("m", "/d", None, 1, None, "v").set_response_status(500, "x")


def test_begin_batch_replaces_responses_and_metrics(context):
    context.set_response_status(500, "x", 0)
    context.metrics.add_counter("c", 1)
    context._begin_batch({0: "z"}, [{}])
    assert context.get_response_status(0) == (200, None)
    assert context._metric_lines() == []
    assert context.request_ids == {0: "z"}


def test_equality():
    assert Context("m", "/d", None, 1, None, "v") == Context("m", "/d", None, 1, None, "v")
    assert Context("m", "/d", None, 1, None, "v") != Context("n", "/d", None, 1, None, "v")


def test_request_processor():
    processor = RequestProcessor({"k": "v"})
    assert processor.get_request_property("k") == "v"
    processor.report_status(201)
    processor.add_response_property("a", "b")
    assert (processor.get_response_status_code(), processor.get_response_status_phrase()) == (201, None)
    assert processor.get_response_header("a") == "b"


def test_metric_lines_use_mms_format(context):
    context.metrics.add_time("PredictionTime", 1.25)
    context.metrics.add_counter("Hits", 1, idx=1)
    context.metrics.add_counter("Hits", 2, idx=1)
    lines = context._metric_lines()
    host = re.escape(socket.gethostname())
    assert re.fullmatch(
        rf"PredictionTime\.Milliseconds:1\.25\|#ModelName:model,Level:Model\|#hostname:{host},\d+,a,b", lines[0]
    )
    assert re.fullmatch(rf"Hits\.Count:3\|#ModelName:model,Level:Model\|#hostname:{host},\d+,b", lines[1])


def test_metrics_store_units_and_validation():
    store = MetricsStore({0: "r"}, "m")
    store.add_size("Mem", 10, unit="kB")
    store.add_percent("Cpu", 50)
    store.add_metric("Custom", 1)
    store.add_error("Err", "bad")
    assert [(m.name, m.unit, m.request_id) for m in store.store] == [
        ("Mem", "Kilobytes", "r"),
        ("Cpu", "Percent", "r"),
        ("Custom", "unit", "r"),
        ("Err", "", None),
    ]
    assert str(store.store[3].dimensions[0]) == "Level:Error"
    with pytest.raises(ValueError, match="timed metric"):
        store.add_time("t", 1, unit="h")
    with pytest.raises(ValueError, match="size based metric"):
        store.add_size("s", 1, unit="TB")
    with pytest.raises(ValueError, match="list of dimensions"):
        store.add_counter("c", 1, dimensions=Dimension("a", "b"))


def test_user_dimensions_are_kept_for_every_kind_and_the_list_is_not_modified():
    store = MetricsStore({0: "r"}, "m")
    dims = [Dimension("Host", "h1")]
    store.add_time("t", 5, dimensions=dims)
    store.add_time("t", 7, dimensions=dims)
    assert dims == [dims[0]]
    assert len(store.store) == 1 and store.store[0].value == 7
    assert [str(d) for d in store.store[0].dimensions] == ["Host:h1", "ModelName:m", "Level:Model"]


def test_metric_to_dict_and_dimension_to_dict():
    metric = Metric("n", 1, "ms", [Dimension("a", "b")], "r")
    assert metric.to_dict()["Unit"] == "Milliseconds"
    assert Dimension("a", "b").to_dict() == {"Name": "a", "Value": "b"}


def test_prediction_exception():
    error = PredictionException("bad", 400)
    assert (error.message, error.error_code, str(error)) == ("bad", 400, "bad : 400")
    assert PredictionException("x").error_code == 500
