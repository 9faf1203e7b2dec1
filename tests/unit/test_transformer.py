"""Transformer pieces that handler-service tests do not reach: patch targets, arity, handle_error."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from sagemaker_inference import environment, errors, transformer
from sagemaker_inference.context import Context
from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
from sagemaker_inference.transformer import Transformer


def test_initial_state():
    t = Transformer()
    assert isinstance(t._default_inference_handler, DefaultInferenceHandler)
    for name in [
        "_environment", "_model", "_pre_model_fn", "_model_warmup_fn", "_model_fn", "_transform_fn",
        "_input_fn", "_predict_fn", "_output_fn", "_context",
    ]:  # fmt: skip
        assert getattr(t, name) is None, name
    assert t._initialized is False


def test_validate_and_initialize_default_model_dir_is_bound_at_import():
    import inspect

    default = inspect.signature(Transformer.validate_and_initialize).parameters["model_dir"].default
    assert default == environment.model_dir


def test_run_handler_function_passes_context_by_arity():
    t = Transformer()
    t._context = "ctx"
    assert t._run_handler_function(lambda a, b: (a, b), 1, 2) == (1, 2)
    assert t._run_handler_function(lambda a, b, c: (a, b, c), 1, 2) == (1, 2, "ctx")
    assert t._run_handler_function(lambda a, b=0, c=None: (a, b, c), 1, 2) == (1, 2, "ctx")

    def dummy_handler_func(a, b):
        return a

    with pytest.raises(TypeError, match=r"^dummy_handler_func takes 2 arguments but 3 were given\.$"):
        t._run_handler_function(dummy_handler_func, 1, 2, 3)


def test_arity_is_computed_once_per_function(monkeypatch):
    t = Transformer()
    calls = []
    real = transformer._arity
    monkeypatch.setattr(transformer, "_arity", lambda f: calls.append(f) or real(f))

    def fn(a):
        return a

    for i in range(3):
        assert t._run_handler_function(fn, i) == i
    assert calls == [fn]


def test_run_handler_function_accepts_unhashable_callables():
    class Callable:
        __hash__ = None

        def __call__(self, a):
            return a * 2

    assert Transformer()._run_handler_function(Callable(), 4) == 8


def test_patched_run_handler_function_is_the_call_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "no_such_module_here")
    context = Context("m", str(tmp_path), None, 1, None, "v")
    with mock.patch.object(Transformer, "_run_handler_function", return_value="model") as run:
        Transformer().validate_and_initialize(str(tmp_path), context)
    run.assert_called_once()


def test_patched_find_spec_and_import_module_are_used(monkeypatch):
    module = mock.Mock(spec=["model_fn", "predict_fn"])
    module.model_fn = lambda model_dir: "m"
    module.predict_fn = lambda data, model: data
    with mock.patch("sagemaker_inference.transformer.find_spec", return_value=object()) as find_spec:
        with mock.patch("importlib.import_module", return_value=module) as import_module:
            t = Transformer()
            t.validate_and_initialize("/model")
    find_spec.assert_called_once_with("inference")
    import_module.assert_called_once_with("inference")
    assert t._model == "m" and t._predict_fn is module.predict_fn


def test_patched_environment_and_retrieve_content_type_header_are_used(tmp_path):
    env = mock.Mock(module_name="no_such_module_here", default_accept="text/csv")
    t = Transformer()
    t._default_inference_handler.default_model_fn = lambda model_dir: None
    t._default_inference_handler.default_predict_fn = lambda data, model: data
    context = Context("m", str(tmp_path), None, 1, None, "v")
    context._begin_batch({0: "r"}, [{}])
    with mock.patch("sagemaker_inference.environment.Environment", return_value=env):
        with mock.patch("sagemaker_inference.utils.retrieve_content_type_header", return_value="application/json"):
            assert t.transform([{"body": b"[1, 2]"}], context) == ["1\n2\n"]
    assert context.get_response_content_type(0) == "text/csv"


def test_subclass_default_transform_fn_override_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "no_such_module_here")

    class Custom(Transformer):
        def _default_transform_fn(self, model, input_data, content_type, accept):
            return f"custom:{input_data}"

    handler = DefaultInferenceHandler()
    handler.default_model_fn = lambda model_dir: None
    context = Context("m", str(tmp_path), None, 1, None, "v")
    context._begin_batch({0: "r"}, [{"Content-Type": "application/json"}])
    assert Custom(handler).transform([{"body": b"1"}], context) == ["custom:1"]


def test_handle_error_sets_index_0_and_returns_a_json_body():
    context = Context("m", "/d", None, 1, None, "v")
    context._begin_batch({0: "r"}, [{}])
    body = Transformer.handle_error(context, errors.GenericInferenceToolkitError(418, "tea\npot"), "trace")
    assert json.loads(body[0]) == {"code": 418, "type": "GenericInferenceToolkitError", "message": "tea\npot"}
    assert context.get_response_status(0) == (418, "tea pot")
    assert context.get_response_content_type(0) == "application/json"


def test_status_below_400_from_a_toolkit_error_has_no_json_body():
    context = Context("m", "/d", None, 1, None, "v")
    context._begin_batch({0: "r"}, [{}])
    body = Transformer.handle_error(context, errors.BaseInferenceToolkitError(204, "", ""), None)
    assert body == [""]
    assert context.get_response_status(0) == (204, "")
    assert context.get_response_content_type(0) is None


# Containers' unit tests drive the Transformer with ``unittest.mock`` contexts and patched
# methods, as upstream's own tests do. These check that such tests keep passing.


def _mock_context(headers: dict) -> mock.Mock:
    context = mock.Mock()
    processor = mock.Mock()
    processor.get_request_properties.return_value = headers
    context.request_processor = [processor]
    return context


@mock.patch("sagemaker_inference.transformer.Transformer._run_handler_function", return_value="result")
@mock.patch("sagemaker_inference.utils.retrieve_content_type_header", return_value="content_type")
@mock.patch("sagemaker_inference.transformer.Transformer.validate_and_initialize")
def test_mock_context_batch_uses_index_0_for_every_item(validate, retrieve, run_handler):
    context = _mock_context({"accept": "accept"})
    t = Transformer()
    t._model, t._transform_fn = "model", mock.Mock()

    assert t.transform([{"body": "a"}, {"body": "b"}], context) == ["result", "result"]

    validate.assert_called_once()
    assert retrieve.call_count == 2
    run_handler.assert_called_with(t._transform_fn, "model", "b", "content_type", "accept")
    assert context.set_response_content_type.call_args_list == [mock.call(0, "accept")] * 2


@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
@mock.patch("sagemaker_inference.transformer.Transformer._run_handler_function")
@mock.patch("sagemaker_inference.transformer.Transformer.validate_and_initialize")
def test_text_bodies_are_decoded_with_their_decode_method(validate, run_handler, content_type):
    body = mock.Mock()
    body.decode.return_value = "text"
    t = Transformer()
    t._transform_fn = mock.Mock()
    t.transform([{"body": body}], _mock_context({"Content-Type": content_type, "Accept": "x/y"}))
    body.decode.assert_called_once_with("utf-8")
    run_handler.assert_called_once_with(t._transform_fn, None, "text", content_type, "x/y")


@mock.patch("sagemaker_inference.transformer.Transformer._validate_user_module_and_set_functions")
@mock.patch("sagemaker_inference.environment.Environment")
def test_initialization_error_with_a_mock_context(env, validate_user_module):
    validate_user_module.side_effect = ValueError("Foo")
    context = mock.Mock()  # no request_processor list: len() is not supported
    response = Transformer().transform([{"body": "x"}], context)
    assert json.loads(response[0])["message"] == "Foo"
    context.set_response_status.assert_called_with(code=500, phrase="Foo")


@mock.patch("sagemaker_inference.transformer.Transformer._validate_user_module_and_set_functions")
@mock.patch("sagemaker_inference.environment.Environment")
def test_validate_and_initialize_passes_the_context_to_a_mock_model_fn(env, validate_user_module):
    t = Transformer()
    t._model_fn = mock.Mock()
    context = mock.Mock()
    t.validate_and_initialize(context=context)
    t.validate_and_initialize()
    t._model_fn.assert_called_once_with(environment.model_dir, context)
    env.assert_called_once_with()


@mock.patch("importlib.import_module", return_value=object())
@mock.patch("sagemaker_inference.transformer.find_spec", return_value=mock.Mock())
def test_a_mock_default_handler_does_not_enable_the_batch_path(find_spec, import_module):
    t = Transformer(mock.Mock())
    t._environment = mock.Mock()
    t._validate_user_module_and_set_functions()
    assert t._predict_batch_fn is None
    assert t._input_fn is t._default_inference_handler.default_input_fn


@mock.patch(
    "sagemaker_inference.transformer.Transformer._run_handler_function", side_effect=["data", "prediction", "out"]
)
def test_default_transform_fn_goes_through_run_handler_function(run_handler):
    t = Transformer()
    t._input_fn, t._predict_fn, t._output_fn = mock.Mock(), mock.Mock(), mock.Mock()
    assert t._default_transform_fn("model", "input", "ct", "accept", None) == "out"
    assert run_handler.call_args_list == [
        mock.call(t._input_fn, "input", "ct"),
        mock.call(t._predict_fn, "data", "model"),
        mock.call(t._output_fn, "prediction", "accept"),
    ]


def test_initialize_with_a_magic_mock_context():
    from sagemaker_inference.default_handler_service import DefaultHandlerService

    service = mock.Mock()
    context = mock.MagicMock()
    context.system_properties.get.return_value = "/opt/ml/models/model-name"
    with mock.patch.dict("os.environ", {}, clear=False):
        DefaultHandlerService(service).initialize(context)
    service.validate_and_initialize.assert_called_once_with(model_dir="/opt/ml/models/model-name", context=context)
