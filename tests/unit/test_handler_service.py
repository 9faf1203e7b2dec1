"""DefaultHandlerService driven like a worker drives it: a real Context and a real inference.py."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import textwrap

import numpy as np
import pytest

from sagemaker_inference import content_types, default_inference_handler, errors
from sagemaker_inference.context import Context, RequestProcessor
from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer

MODEL_FN = "def model_fn(model_dir):\n    return {'dir': model_dir, 'scale': 2}\n"


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    """A model directory whose code/ is on sys.path; write code with ``write_code``."""
    (tmp_path / "code").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    monkeypatch.delenv("SAGEMAKER_PROGRAM", raising=False)
    monkeypatch.delenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", raising=False)
    monkeypatch.setenv("PYTHONPATH", "/already")
    sys.modules.pop("inference", None)
    yield tmp_path
    sys.modules.pop("inference", None)


def write_code(model_dir, source: str, name: str = "inference.py") -> None:
    (model_dir / "code" / name).write_text(textwrap.dedent(source))


def headers(content_type: str | None = content_types.JSON, accept: str | None = None) -> dict:
    """Request headers as the worker presents them: the body parameter first, then HTTP headers."""
    result: dict = {"body": {"content-type": content_type or ""}}
    if content_type is not None:
        result["Content-Type"] = content_type
    if accept is not None:
        result["Accept"] = accept
    return result


def new_context(model_dir, *request_headers: dict) -> Context:
    context = Context("model", str(model_dir), None, max(1, len(request_headers)), None, "test")
    context._begin_batch({i: f"request-{i}" for i in range(len(request_headers))}, list(request_headers))
    return context


def serve(model_dir, bodies: list, *request_headers: dict, service: DefaultHandlerService | None = None):
    service = service or DefaultHandlerService()
    context = new_context(model_dir)
    service.initialize(context)
    context._begin_batch({i: f"request-{i}" for i in range(len(bodies))}, list(request_headers))
    return service.handle([{"body": body} for body in bodies], context), context


def status(context: Context, idx: int = 0) -> int:
    return context.get_response_status(idx)[0]


def error_of(body: str) -> dict:
    payload = json.loads(body)
    assert set(payload) == {"code", "type", "message"}
    return payload


def test_default_handlers_json_in_json_out(model_dir):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return data * model['scale']\n")

    out, context = serve(model_dir, [b"[[1, 2], [3, 4]]"], headers(content_types.JSON))

    assert out == [json.dumps([[2, 4], [6, 8]])]
    assert status(context) == 200
    assert context.get_response_content_type(0) == content_types.JSON


def test_initialize_loads_the_model_once_with_model_dir_and_sets_pythonpath(model_dir):
    write_code(
        model_dir,
        """
        calls = []

        def model_fn(model_dir):
            calls.append(model_dir)
            return "model"

        def predict_fn(data, model):
            return [model, len(calls)]
        """,
    )
    out, _ = serve(model_dir, [b"1"], headers())
    assert json.loads(out[0]) == ["model", 1]
    assert sys.modules["inference"].calls == [str(model_dir)]
    assert os.environ["PYTHONPATH"] == f"{model_dir}/code:/already"


def test_pre_model_fn_model_fn_and_model_warmup_fn_run_in_order(model_dir):
    write_code(
        model_dir,
        """
        order = []

        def pre_model_fn(model_dir):
            order.append("pre")

        def model_fn(model_dir):
            order.append("model")
            return "m"

        def model_warmup_fn(model_dir, model):
            order.append("warmup:" + model)
        """,
    )
    DefaultHandlerService().initialize(new_context(model_dir))
    assert sys.modules["inference"].order == ["pre", "model", "warmup:m"]


@pytest.mark.parametrize(
    ("content_type", "body", "accept", "expected"),
    [
        (content_types.CSV, b"1,2,3\n4,5,6\n", content_types.CSV, "2,4,6\n8,10,12\n"),
        ("text/csv; charset=utf-8", b"1,2\n", "application/json", "[2, 4]"),
        ("Application/JSON; charset=latin-1", b"[1.5]", "text/csv;q=0.5, application/json", "[3.0]"),
        (content_types.JSON, b"[1, 2]", "*/*", "[2, 4]"),
        (content_types.JSON, b"[1, 2]", "text/html, text/*;q=0.8", "2\n4\n"),
    ],
)
def test_default_codecs_and_negotiation(model_dir, content_type, body, accept, expected):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return data * model['scale']\n")
    out, context = serve(model_dir, [body], headers(content_type, accept))
    assert status(context) == 200
    assert out == [expected]


def test_npy_round_trip(model_dir):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return data * model['scale']\n")
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.float32).reshape(2, 3))

    out, context = serve(model_dir, [buffer.getvalue()], headers(content_types.NPY, content_types.NPY))

    assert context.get_response_content_type(0) == content_types.NPY
    np.testing.assert_array_equal(np.load(io.BytesIO(out[0])), np.arange(6).reshape(2, 3) * 2)


def test_user_input_predict_output_fns_receive_decoded_text_and_bare_type(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + """
def input_fn(input_data, content_type):
    return {"data": input_data, "type": content_type}

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return json.dumps(prediction) + accept

import json
""",
    )
    out, context = serve(model_dir, ["héllo".encode("latin-1")], headers("text/csv; charset=ISO-8859-1", "text/x"))
    assert out == ['{"data": "h\\u00e9llo", "type": "text/csv"}text/x']
    # A bare body is sent with the accept value as content type, as upstream.
    assert context.get_response_content_type(0) == "text/x"


def test_other_content_types_reach_input_fn_verbatim_as_bytes(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + """
def input_fn(input_data, content_type):
    return [type(input_data).__name__, content_type]

def predict_fn(data, model):
    return data
""",
    )
    out, _ = serve(model_dir, [b"\x00\x01"], headers("application/x-thing; v=1"))
    assert json.loads(out[0]) == ["bytes", "application/x-thing; v=1"]


def test_transform_fn(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + """
def transform_fn(model, input_data, content_type, accept):
    return "%s|%s|%s|%s" % (model["scale"], input_data, content_type, accept), "text/plain"
""",
    )
    out, context = serve(model_dir, [b"abc"], headers(content_types.JSON))
    assert out == ["2|abc|application/json|application/json"]
    assert context.get_response_content_type(0) == "text/plain"


def test_transform_fn_with_input_fn_is_rejected_at_initialize(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + """
def transform_fn(model, input_data, content_type, accept):
    return input_data

def input_fn(input_data, content_type):
    return input_data
""",
    )
    with pytest.raises(ValueError) as excinfo:
        DefaultHandlerService().initialize(new_context(model_dir))
    assert str(excinfo.value) == (
        "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
        "and/or output_fn implementation"
    )


def test_functions_with_a_trailing_context_parameter_receive_the_context(model_dir):
    write_code(
        model_dir,
        """
seen = []

def model_fn(model_dir, context):
    seen.append(context)
    return "m"

def input_fn(input_data, content_type, context):
    seen.append(context)
    return input_data

def predict_fn(data, model, context):
    seen.append(context)
    return data

def output_fn(prediction, accept, context):
    seen.append(context)
    return prediction, accept
""",
    )
    service = DefaultHandlerService()
    context = new_context(model_dir)
    service.initialize(context)
    context._begin_batch({0: "r"}, [headers()])
    assert service.handle([{"body": b"x"}], context) == ["x"]
    assert sys.modules["inference"].seen == [context] * 4


def test_a_function_with_the_wrong_arity_fails_with_upstreams_message(model_dir):
    write_code(model_dir, MODEL_FN + "def predict_fn(a, b, c, d):\n    return a\n")
    out, context = serve(model_dir, [b"1"], headers())
    assert status(context) == 500
    assert error_of(out[0])["message"] == "predict_fn takes 4 arguments but 2 were given."


def test_staticmethod_overrides_on_a_default_handler_subclass(model_dir):
    class Handler(default_inference_handler.DefaultInferenceHandler):
        @staticmethod
        def default_model_fn(model_dir):
            return 10

        @staticmethod
        def default_predict_fn(data, model):
            return data + model

        @staticmethod
        def default_output_fn(prediction, accept):
            return str(prediction.tolist()), "text/plain"

    service = DefaultHandlerService(transformer=Transformer(default_inference_handler=Handler()))
    out, context = serve(model_dir, [b"[1, 2]"], headers(), service=service)
    assert out == ["[11, 12]"]
    assert context.get_response_content_type(0) == "text/plain"


def test_a_subclass_may_set_service_without_calling_super_init(model_dir):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return data\n")

    class Service(DefaultHandlerService):
        def __init__(self):
            self._service = None

        def initialize(self, context):
            self._service = Transformer()
            super().initialize(context)

    out, _ = serve(model_dir, [b"[3]"], headers(), service=Service())
    assert out == ["[3]"]


def test_without_a_user_module_the_default_model_fn_raises(model_dir):
    with pytest.raises(NotImplementedError, match="Please provide a model_fn implementation"):
        DefaultHandlerService().initialize(new_context(model_dir))


def test_a_failed_lazy_initialization_fails_every_request_of_the_batch(model_dir):
    context = new_context(model_dir, headers(), headers())
    out = DefaultHandlerService().handle([{"body": b"1"}, {"body": b"2"}], context)
    assert len(out) == 2
    assert [status(context, i) for i in range(2)] == [500, 500]
    assert error_of(out[1])["type"] == "NotImplementedError"


@pytest.mark.parametrize(
    ("content_type", "body", "accept", "code", "error_type"),
    [
        ("text/plain", b"1", None, 415, "UnsupportedMediaTypeError"),
        (None, b"1", None, 415, "UnsupportedMediaTypeError"),
        (content_types.JSON, b"[1]", "text/html", 406, "NotAcceptableError"),
        (content_types.JSON, b"[1]", "application/json;q=0, text/plain", 406, "NotAcceptableError"),
        (content_types.JSON, b"{not json", None, 400, "DecodeError"),
        (content_types.JSON, b'{"a": 1}', None, 400, "DecodeError"),
        (content_types.JSON, b"\xff\xfe", None, 400, "DecodeError"),
        ("application/json; charset=no-such-charset", b"1", None, 415, "UnsupportedMediaTypeError"),
        (content_types.CSV, b"1,2\n3\n", None, 400, "DecodeError"),
        (content_types.NPY, b"\x93NUMPY truncated", None, 400, "DecodeError"),
        (content_types.JSON, b"", None, 400, "DecodeError"),
    ],
)
def test_client_errors_get_their_status_and_a_json_body(model_dir, content_type, body, accept, code, error_type):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return data\n")
    out, context = serve(model_dir, [body], headers(content_type, accept))
    payload = error_of(out[0])
    assert (status(context), payload["code"], payload["type"]) == (code, code, error_type)
    assert context.get_response_content_type(0) == content_types.JSON
    assert context.get_response_status(0)[1] == payload["message"]


def test_bare_unsupported_format_error_is_415_from_input_fn_and_406_from_output_fn(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + """
from sagemaker_inference import errors

def input_fn(input_data, content_type):
    if input_data == "in":
        raise errors.UnsupportedFormatError(content_type)
    return input_data

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    raise errors.UnsupportedFormatError(accept)
""",
    )
    out, context = serve(model_dir, [b"in", b"out"], headers(), headers())
    assert [status(context, 0), status(context, 1)] == [415, 406]
    assert error_of(out[0])["message"].startswith("Content type application/json is not supported")


def test_user_exception_is_a_500_with_a_short_message_and_the_traceback_in_the_log(model_dir, caplog):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    raise RuntimeError('model\\r\\nexploded')\n")
    with caplog.at_level(logging.INFO, logger="sagemaker-inference"):
        out, context = serve(model_dir, [b"1"], headers())
    assert error_of(out[0]) == {"code": 500, "type": "RuntimeError", "message": "model\r\nexploded"}
    assert context.get_response_status(0) == (500, "model  exploded")
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text


def test_the_traceback_is_in_the_body_only_with_debug_logging(model_dir, caplog):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    raise RuntimeError('boom')\n")
    with caplog.at_level(logging.DEBUG, logger="sagemaker-inference"):
        out, _ = serve(model_dir, [b"1"], headers())
    payload = json.loads(out[0])
    assert "Traceback (most recent call last)" in payload["traceback"]
    assert "predict_fn" in payload["traceback"]


def test_toolkit_errors_keep_their_status_message_and_phrase(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + """
from sagemaker_inference import errors

class Forbidden(errors.BaseInferenceToolkitError):
    def __init__(self):
        self.status_code = 403
        self.message = "not for you"
        self.phrase = "Forbidden\\nreally"

def predict_fn(data, model):
    raise Forbidden()
""",
    )
    out, context = serve(model_dir, [b"1"], headers())
    assert error_of(out[0]) == {"code": 403, "type": "Forbidden", "message": "not for you"}
    assert context.get_response_status(0) == (403, "Forbidden really")


def test_prediction_exception_uses_its_error_code(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + """
from sagemaker_inference.context import PredictionException

def predict_fn(data, model):
    raise PredictionException("bad input", 400)
""",
    )
    out, context = serve(model_dir, [b"1"], headers())
    assert status(context) == 400
    assert error_of(out[0])["message"] == "bad input"


def test_a_batch_uses_each_requests_own_headers(model_dir):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return data * model['scale']\n")
    npy = io.BytesIO()
    np.save(npy, np.array([5, 6]))
    out, context = serve(
        model_dir,
        [b"[1, 2]", b"3,4\n", npy.getvalue()],
        headers(content_types.JSON, content_types.CSV),
        headers(content_types.CSV, content_types.JSON),
        headers(content_types.NPY, None),
    )
    assert out == ["2\n4\n", "[6, 8]", "[10, 12]"]
    assert [context.get_response_content_type(i) for i in range(3)] == [
        content_types.CSV,
        content_types.JSON,
        content_types.JSON,
    ]
    assert [status(context, i) for i in range(3)] == [200, 200, 200]


def test_a_failing_request_fails_alone(model_dir):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return 10 // int(data)\n")
    out, context = serve(model_dir, [b"2", b"0", b"oops", b"5"], *[headers()] * 4)
    assert [status(context, i) for i in range(4)] == [200, 500, 400, 200]
    assert out[0] == "5" and out[3] == "2"
    assert error_of(out[1])["type"] == "ZeroDivisionError"


def test_requests_beyond_the_processor_list_use_index_0(model_dir):
    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return data\n")
    service = DefaultHandlerService()
    context = new_context(model_dir)
    service.initialize(context)
    context.request_processor = [RequestProcessor(headers(content_types.JSON, content_types.CSV))]
    assert service.handle([{"body": b"[1]"}, {"body": b"[2]"}], context) == ["1\n", "2\n"]
    assert context.get_response_content_type(0) == content_types.CSV


BATCH_MODULE = (
    MODEL_FN
    + """
calls = []

def predict_batch_fn(inputs, model):
    calls.append(len(inputs))
    results = []
    for x in inputs:
        if x.size and x.flat[0] < 0:
            results.append(ValueError("negative input"))
        else:
            results.append(x * model["scale"])
    return results
"""
)


def test_predict_batch_fn_is_called_once_per_batch_with_per_item_failures(model_dir):
    write_code(model_dir, BATCH_MODULE)
    out, context = serve(
        model_dir,
        [b"[1]", b"not json", b"2,3\n", b"[-1]", b"[4]"],
        headers(content_types.JSON),
        headers(content_types.JSON),
        headers(content_types.CSV, content_types.CSV),
        headers(content_types.JSON),
        headers("text/plain"),
    )
    assert sys.modules["inference"].calls == [3]
    assert [status(context, i) for i in range(5)] == [200, 400, 200, 500, 415]
    assert out[0] == "[2]" and out[2] == "4\n6\n"
    assert error_of(out[3]) == {"code": 500, "type": "ValueError", "message": "negative input"}


def test_predict_batch_fn_takes_the_context_and_toolkit_errors_keep_their_status(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + """
from sagemaker_inference import errors

def predict_batch_fn(inputs, model, context):
    return [context.model_name, errors.GenericInferenceToolkitError(422, "unprocessable")]
""",
    )
    out, context = serve(model_dir, [b"1", b"2"], headers(), headers())
    assert out[0] == '"model"'
    assert [status(context, 0), status(context, 1)] == [200, 422]


@pytest.mark.parametrize("result", ["[1]", "None", "'ab'"])
def test_predict_batch_fn_returning_the_wrong_shape_fails_every_item(model_dir, result):
    write_code(model_dir, MODEL_FN + f"def predict_batch_fn(inputs, model):\n    return {result}\n")
    out, context = serve(model_dir, [b"1", b"2"], headers(), headers())
    assert [status(context, 0), status(context, 1)] == [500, 500]
    assert "predict_batch_fn" in error_of(out[0])["message"]


def test_predict_batch_fn_with_transform_fn_is_rejected(model_dir):
    write_code(
        model_dir,
        MODEL_FN
        + "def transform_fn(m, d, c, a):\n    return d\n\ndef predict_batch_fn(inputs, model):\n    return inputs\n",
    )
    with pytest.raises(ValueError, match="predict_batch_fn"):
        DefaultHandlerService().initialize(new_context(model_dir))


def test_default_predict_batch_fn_of_a_handler_yields_to_a_user_predict_fn(model_dir):
    class Handler(default_inference_handler.DefaultInferenceHandler):
        def default_predict_batch_fn(self, inputs, model):
            return ["batch"] * len(inputs)

    write_code(model_dir, MODEL_FN)
    service = DefaultHandlerService(transformer=Transformer(Handler()))
    assert serve(model_dir, [b"1"], headers(), service=service)[0] == ['"batch"']

    write_code(model_dir, MODEL_FN + "def predict_fn(data, model):\n    return 'single'\n")
    sys.modules.pop("inference", None)
    service = DefaultHandlerService(transformer=Transformer(Handler()))
    assert serve(model_dir, [b"1"], headers(), service=service)[0] == ['"single"']


def test_an_encoding_failure_in_a_batch_fails_only_that_item(model_dir):
    write_code(model_dir, BATCH_MODULE)
    out, context = serve(model_dir, [b"[1]", b"[2]"], headers(accept="text/html"), headers())
    assert [status(context, 0), status(context, 1)] == [406, 200]
    assert out[1] == "[4]"


def test_errors_module_classes_used_for_statuses_are_the_documented_ones():
    assert issubclass(errors.UnsupportedMediaTypeError, errors.UnsupportedFormatError)
    assert issubclass(errors.NotAcceptableError, errors.UnsupportedFormatError)
    assert issubclass(errors.DecodeError, ValueError)


def test_the_batching_doc_example_splits_one_model_call_back_per_request(model_dir):
    write_code(
        model_dir,
        """
        import numpy as np

        class Model:
            calls = 0

            def predict(self, rows):
                Model.calls += 1
                return rows.sum(axis=1)

        def model_fn(model_dir):
            return Model()

        def predict_batch_fn(inputs, model):
            rows = [np.atleast_2d(x) for x in inputs]
            sizes = [len(r) for r in rows]
            predictions = model.predict(np.concatenate(rows))
            return np.split(predictions, np.cumsum(sizes)[:-1])
        """,
    )
    out, context = serve(
        model_dir, [b"1,2\n", b"[[1, 1], [2, 2]]"], headers(content_types.CSV), headers(content_types.JSON)
    )
    assert out == ["[3]", "[2, 4]"]
    assert sys.modules["inference"].Model.calls == 1
