"""This module contains functionality for the Transformer class,
which represents the execution workflow for handling inference
requests.

How a batch is served (differences from upstream are in docs/compatibility.md):

* Request ``i`` of a batch is decoded with the Content-Type and encoded with the Accept of
  ``context.request_processor[i]`` (index 0 when the list is shorter, e.g. a hand-built
  context), and its status and content type are set on index ``i``.
* A failing request fails alone: it gets a JSON error body
  ``{"code", "type", "message"}`` and a status chosen from the exception's type
  (``_responses.http_error``); the others in the batch are unaffected.
* If the user module (or the default handler) provides ``predict_batch_fn(inputs, model)``,
  inputs are decoded one by one, the model is called once for the batch, and outputs are
  encoded one by one (``_transform_batch``).

Streaming: a body that is an iterator (a generator) is streamed by the server, chunk by chunk.
``transform_fn`` and ``output_fn`` may return one (also as ``(iterator, content_type)``); a
``predict_fn`` that returns one with the default ``output_fn`` has it passed through unencoded.
Sessions: ``bidirectional_stream_fn(messages, model[, context])`` serves a WebSocket session and
``close_session_fn(session_id, model[, context])`` runs when a stateful session closes or expires
(see docs/streaming.md).

User functions are called through ``_run_handler_function``, which passes the context only
when the function's signature has room for it. The parameter count is computed once per
function (``inspect.signature`` costs microseconds) and cached.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from importlib.util import find_spec
from typing import Any, Callable

from sagemaker_inference import _mime, _responses, content_types, decoder, environment, errors, logging, utils
from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
from sagemaker_inference.errors import BaseInferenceToolkitError, GenericInferenceToolkitError
from sagemaker_inference.streaming import is_stream as _is_stream

logger = logging.get_logger()

_TEXT_TYPES = frozenset(content_types.UTF8_TYPES)
_ARITY_CACHE_LIMIT = 256


class Transformer:
    """Represents the execution workflow for handling inference requests
    sent to the model server.
    """

    def __init__(self, default_inference_handler: Any = None) -> None:
        """Initialize a ``Transformer``.

        Args:
            default_inference_handler (DefaultInferenceHandler): default implementation of
                inference handlers to use in absence of expected serving functions within
                the user module. Defaults to ``DefaultInferenceHandler``.
        """
        self._default_inference_handler = default_inference_handler or DefaultInferenceHandler()
        self._initialized = False
        self._environment: Any = None
        self._model: Any = None

        self._pre_model_fn: Callable[..., Any] | None = None
        self._model_warmup_fn: Callable[..., Any] | None = None
        self._model_fn: Callable[..., Any] | None = None
        self._transform_fn: Callable[..., Any] | None = None
        self._input_fn: Callable[..., Any] | None = None
        self._predict_fn: Callable[..., Any] | None = None
        self._output_fn: Callable[..., Any] | None = None
        self._predict_batch_fn: Callable[..., Any] | None = None
        self._bidirectional_stream_fn: Callable[..., Any] | None = None
        self._close_session_fn: Callable[..., Any] | None = None
        self._user_output_fn = False
        self._context: Any = None
        self._arities: dict[Any, int] = {}

    @staticmethod
    def handle_error(context: Any, inference_exception: BaseException, trace: str | None) -> list[str]:
        """Set context appropriately for error response.

        Sets the status (and a JSON content type) of request 0 and returns the JSON error
        body; the traceback is logged, and included in the body only when the
        "sagemaker-inference" logger is enabled for DEBUG.

        Args:
            context (mms.context.Context): The inference context.
            inference_exception (sagemaker_inference.errors.BaseInferenceToolkitError): An exception
                raised during inference, with information for the error response.
            trace (traceback): The stacktrace of the error.

        Returns:
            list[str]: the error body, wrapped in a list.
        """
        return [_responses.report(context, (0,), inference_exception, trace)]

    def transform(self, data: Sequence[dict[str, Any]], context: Any) -> list[Any]:
        """Take a request with input data, deserialize it, make a prediction, and return a
        serialized response.

        Args:
            data (obj): the request data, one dict per request of the batch.
            context (obj): metadata on the incoming request data.

        Returns:
            list[obj]: one response body per request, in order. A request that failed has a
                JSON error body and its status set on the context.
        """
        if not self._initialized:
            try:
                model_dir = context.system_properties.get("model_dir")
                self.validate_and_initialize(model_dir=model_dir, context=context)
            except Exception as e:
                body = _responses.report(context, range(min(len(data), _batch_width(context))), e)
                return [body] * len(data)
        processors = context.request_processor or ()
        if self._predict_batch_fn is not None:
            return self._transform_batch(data, context, processors)
        responses = []
        for i, item in enumerate(data):
            idx = i if i < len(processors) else 0
            try:
                input_data, content_type, accept = self._read_request(item, processors[idx])
                result = self._run_handler_function(self._transform_fn, self._model, input_data, content_type, accept)
                responses.append(_responses.respond(context, idx, result, accept))
            except Exception as e:
                responses.append(_responses.report(context, (idx,), e))
        return responses

    def _transform_batch(self, data: Sequence[dict[str, Any]], context: Any, processors: Sequence[Any]) -> list[Any]:
        """Serve a batch with one ``predict_batch_fn`` call; see docs/batching.md."""
        responses: list[Any] = [None] * len(data)
        inputs: list[Any] = []
        pending: list[tuple[int, int, str]] = []  # (position in data, context index, accept)
        for i, item in enumerate(data):
            idx = i if i < len(processors) else 0
            try:
                input_data, content_type, accept = self._read_request(item, processors[idx])
                inputs.append(self._decode_input(input_data, content_type))
                pending.append((i, idx, accept))
            except Exception as e:
                responses[i] = _responses.report(context, (idx,), e)
        if not pending:
            return responses
        try:
            predictions = self._run_handler_function(self._predict_batch_fn, inputs, self._model)
            _check_predictions(predictions, len(inputs))
        except Exception as e:
            body = _responses.report(context, [idx for _, idx, _ in pending], e)
            for i, _, _ in pending:
                responses[i] = body
            return responses
        for (i, idx, accept), prediction in zip(pending, predictions):
            try:
                if isinstance(prediction, Exception):
                    responses[i] = _responses.report(context, (idx,), prediction)
                else:
                    responses[i] = _responses.respond(context, idx, self._encode_output(prediction, accept), accept)
            except Exception as e:
                responses[i] = _responses.report(context, (idx,), e)
        return responses

    def _read_request(self, item: dict[str, Any], processor: Any) -> tuple[Any, Any, str]:
        """Body, content type and accept of one request, as user functions receive them.

        JSON and CSV bodies are decoded to ``str`` with the request's charset (UTF-8 by
        default) and their content type is passed on as the bare ``application/json`` /
        ``text/csv``; other content types are passed verbatim with a ``bytes`` body.
        """
        headers = processor.get_request_properties()
        content_type = utils.retrieve_content_type_header(headers)
        accept = headers.get("Accept") or headers.get("accept")
        if not accept or accept == content_types.ANY:
            accept = self._environment.default_accept
        input_data = item.get("body")
        if content_type:
            media_type = _mime.parse(content_type)
            if media_type.essence in _TEXT_TYPES:
                content_type = media_type.essence
                if not isinstance(input_data, str) and hasattr(input_data, "decode"):
                    input_data = decoder._text(input_data, media_type.charset)
        return input_data, content_type, accept

    def validate_and_initialize(self, model_dir: str = environment.model_dir, context: Any = None) -> None:
        """Validates the user module against the SageMaker inference contract.

        Load the model as defined by the ``model_fn`` to prepare handling predictions.
        Runs once; after a failure the next call starts over.
        """
        if not self._initialized:
            self._context = context
            self._environment = environment.Environment()
            self._validate_user_module_and_set_functions()

            if self._pre_model_fn is not None:
                self._run_handler_function(self._pre_model_fn, model_dir)

            try:
                self._model = self._run_handler_function(self._model_fn, model_dir)
            except NotImplementedError:
                if getattr(self._model_fn, "__func__", None) is not DefaultInferenceHandler.default_model_fn:
                    raise
                # Upstream's message does not say whether the module is missing or lacks the
                # function (and starts with a newline): say which, and where, first.
                raise NotImplementedError(self._no_model_fn(model_dir)) from None

            if self._model_warmup_fn is not None:
                self._run_handler_function(self._model_warmup_fn, model_dir, self._model)

            self._initialized = True

    def _no_model_fn(self, model_dir: str) -> str:
        name = self._environment.module_name
        spec = find_spec(name)
        if spec is not None:
            where = f"{spec.origin or name} defines no model_fn"
        else:
            where = f"no user module {name}.py in {model_dir}/code (SAGEMAKER_PROGRAM, default inference.py)"
        return (f"{where}. Please provide a model_fn implementation: model_fn(model_dir) loads and returns the "
                "model (https://sagemaker.readthedocs.io/en/stable/)")

    def _validate_user_module_and_set_functions(self) -> None:
        """Retrieves and validates the inference handlers provided within the user module.

        Default implementations of the inference handlers are utilized in
        place of missing functions defined in the user module. A user module that cannot be
        found is silently ignored, as upstream.
        """
        user_module_name = self._environment.module_name
        handler = self._default_inference_handler

        self._pre_model_fn = getattr(handler, "default_pre_model_fn", None)
        self._model_warmup_fn = getattr(handler, "default_model_warmup_fn", None)
        predict_batch_fn = _defined(type(handler), "default_predict_batch_fn") and handler.default_predict_batch_fn

        if find_spec(user_module_name) is not None:
            user_module = importlib.import_module(user_module_name)

            self._model_fn = getattr(user_module, "model_fn", handler.default_model_fn)

            transform_fn = getattr(user_module, "transform_fn", None)
            input_fn = getattr(user_module, "input_fn", None)
            predict_fn = getattr(user_module, "predict_fn", None)
            output_fn = getattr(user_module, "output_fn", None)
            pre_model_fn = getattr(user_module, "pre_model_fn", None)
            model_warmup_fn = getattr(user_module, "model_warmup_fn", None)
            user_predict_batch_fn = _defined(user_module, "predict_batch_fn")

            if transform_fn and (input_fn or predict_fn or output_fn):
                raise ValueError(
                    "Cannot use transform_fn implementation in conjunction with "
                    "input_fn, predict_fn, and/or output_fn implementation"
                )
            if transform_fn and user_predict_batch_fn:
                raise ValueError("Cannot use transform_fn implementation in conjunction with predict_batch_fn")

            self._bidirectional_stream_fn = _defined(user_module, "bidirectional_stream_fn")
            self._close_session_fn = _defined(user_module, "close_session_fn")
            self._user_output_fn = output_fn is not None

            self._transform_fn = transform_fn or self._default_transform_fn
            self._input_fn = input_fn or handler.default_input_fn
            self._predict_fn = predict_fn or handler.default_predict_fn
            self._output_fn = output_fn or handler.default_output_fn
            if pre_model_fn is not None:
                self._pre_model_fn = pre_model_fn
            if model_warmup_fn is not None:
                self._model_warmup_fn = model_warmup_fn
            # A user predict_fn or transform_fn takes precedence over the handler's batch default.
            if user_predict_batch_fn is not None:
                predict_batch_fn = user_predict_batch_fn
            elif transform_fn or predict_fn:
                predict_batch_fn = None
        else:
            self._model_fn = handler.default_model_fn
            self._input_fn = handler.default_input_fn
            self._predict_fn = handler.default_predict_fn
            self._output_fn = handler.default_output_fn

            self._transform_fn = self._default_transform_fn
        self._predict_batch_fn = self._batch_fn_if_usable(predict_batch_fn or None)

    def _batch_fn_if_usable(self, predict_batch_fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
        # A subclass that overrides _default_transform_fn owns the per-request pipeline; the
        # batch path would bypass it, so it is not used.
        if predict_batch_fn is not None and type(self)._default_transform_fn is not Transformer._default_transform_fn:
            logger.warning("predict_batch_fn ignored: %s overrides _default_transform_fn", type(self).__name__)
            return None
        return predict_batch_fn

    def _default_transform_fn(
        self, model: Any, input_data: Any, content_type: Any, accept: str, context: Any = None
    ) -> Any:
        """Make predictions against the model and return a serialized response.
        This serves as the default implementation of transform_fn, used when the
        user has not provided an implementation.

        Args:
            model (obj): model loaded by model_fn.
            input_data (obj): the request data.
            content_type (str): the request content type.
            accept (str): accept header expected by the client.
            context (obj): the request context (default: None).

        Returns:
            obj: the serialized prediction result or a tuple of the form
                (response_data, content_type)
        """
        data = self._decode_input(input_data, content_type)
        prediction = self._run_handler_function(self._predict_fn, data, model)
        return self._encode_output(prediction, accept)

    def _decode_input(self, input_data: Any, content_type: Any) -> Any:
        """``input_fn``; an ``UnsupportedFormatError`` from it means 415, a ``ValueError`` (which
        ``json.loads`` raises for a malformed body, as does ``bytes.decode``) 400: the most common
        user ``input_fn`` is ``json.loads(request_body)``, and what it cannot parse is the client's."""
        try:
            return self._run_handler_function(self._input_fn, input_data, content_type)
        except errors.UnsupportedFormatError as e:
            if isinstance(e, BaseInferenceToolkitError):
                raise
            raise errors.UnsupportedMediaTypeError(content_type, str(e)) from e
        except ValueError as e:
            if isinstance(e, BaseInferenceToolkitError):
                raise
            raise errors.DecodeError(f"input_fn could not read the request: {type(e).__name__}: {e}") from e

    def _encode_output(self, prediction: Any, accept: str) -> Any:
        """``output_fn``; an ``UnsupportedFormatError`` from it means 406. A streamed prediction
        (an iterator) skips the default ``output_fn``, which could only encode it whole."""
        if not self._user_output_fn and _is_stream(prediction):
            return prediction
        try:
            return self._run_handler_function(self._output_fn, prediction, accept)
        except errors.UnsupportedFormatError as e:
            if isinstance(e, BaseInferenceToolkitError):
                raise
            raise errors.NotAcceptableError(accept, str(e)) from e

    def bidirectional_stream(self, messages: Any, context: Any = None) -> Any:
        """Serve one bidirectional session: ``bidirectional_stream_fn(messages, model[, context])``.

        Args:
            messages (iterator): the client's messages, each ``str`` (text) or ``bytes`` (binary).
            context (obj): the session's own context (the upgrade request's headers and query).

        Returns:
            iterator: the messages to send back (``str`` as text, ``bytes`` as binary).
        """
        if self._bidirectional_stream_fn is None:
            raise NotImplementedError("the user module defines no bidirectional_stream_fn")
        return self._call_with(self._bidirectional_stream_fn, context, messages, self._model)

    def close_session(self, session_id: str, context: Any = None) -> Any:
        """Run ``close_session_fn(session_id, model[, context])`` if the user module has one."""
        if self._close_session_fn is None:
            return None
        return self._call_with(self._close_session_fn, context, session_id, self._model)

    def _call_with(self, func: Callable[..., Any], context: Any, *argv: Any) -> Any:
        """``_run_handler_function`` with an explicit context (sessions have their own)."""
        arity = _arity(func)
        if arity == len(argv) + 1:
            return func(*argv, context)
        return func(*argv)

    def _run_handler_function(self, func: Callable[..., Any], *argv: Any) -> Any:
        """Helper to call the handler function which covers 2 cases:
        1. the handle function takes context
        2. the handle function does not take context

        As upstream, every parameter counts (defaulted, ``*args``, ``**kwargs``): a function
        with exactly one more parameter than ``argv`` gets the context appended.
        """
        try:
            num_func_input = self._arities[func]
        except KeyError:
            num_func_input = _arity(func)
            if len(self._arities) >= _ARITY_CACHE_LIMIT:
                self._arities.clear()
            self._arities[func] = num_func_input
        except (TypeError, AttributeError):  # unhashable callable, or __init__ not called
            num_func_input = _arity(func)
        if num_func_input == len(argv):
            return func(*argv)
        if num_func_input == len(argv) + 1:
            return func(*argv, self._context)
        raise TypeError(f"{func.__name__} takes {num_func_input} arguments but {len(argv)} were given.")


def _arity(func: Callable[..., Any]) -> int:
    from inspect import signature

    return len(signature(func).parameters)


def _defined(namespace: Any, name: str) -> Any:
    """``name`` when it is really defined in ``namespace`` (a module or a class), else None.

    Used for the batch hooks, which are new: unlike ``getattr``, this does not pick up the
    attributes a ``unittest.mock.Mock`` user module or handler invents on access, so code
    written for upstream never switches to the batch path by accident.
    """
    if isinstance(namespace, type):
        return next((vars(c)[name] for c in namespace.__mro__ if name in vars(c)), None)
    return getattr(namespace, "__dict__", {}).get(name)


def _batch_width(context: Any) -> int:
    try:
        return len(context.request_processor) or 1
    except TypeError:  # None, or a mock without __len__
        return 1


def _check_predictions(predictions: Any, expected: int) -> None:
    if isinstance(predictions, (str, bytes, bytearray, dict)) or not hasattr(predictions, "__len__"):
        raise GenericInferenceToolkitError(
            500, f"predict_batch_fn must return a list of {expected} predictions, got {type(predictions).__name__}."
        )
    if len(predictions) != expected:
        raise GenericInferenceToolkitError(
            500, f"predict_batch_fn returned {len(predictions)} predictions for {expected} inputs."
        )
