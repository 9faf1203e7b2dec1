"""This module contains functionality for the default handler service."""

from __future__ import annotations

import os
from typing import Any, Callable

from sagemaker_inference.transformer import Transformer

PYTHON_PATH_ENV = "PYTHONPATH"


class DefaultHandlerService:
    """Default handler service that is executed by the model server.

    The handler service is responsible for defining an ``initialize`` and ``handle`` method.
        - The ``handle`` method is invoked for all incoming inference requests to the model server.
        - The ``initialize`` method is invoked at model server start up.

    Both only use ``self._service``, so a subclass may set that attribute itself instead of
    calling ``super().__init__`` (the MXNet container does).

    Implementation of: https://github.com/awslabs/multi-model-server/blob/master/docs/custom_service.md
    """

    def __init__(self, transformer: Any = None) -> None:
        self._service = transformer if transformer else Transformer()

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[Any]:
        """Handles an inference request with input data and makes a prediction.

        Args:
            data (obj): the request data.
            context (obj): metadata on the incoming request data.

        Returns:
            list[obj]: The return value from the Transformer.transform method: one
                serialized response per request; a failed request has an error body and
                its status set on the context.
        """
        return self._service.transform(data, context)

    def initialize(self, context: Any) -> None:
        """Calls the Transformer method that validates the user module against
        the SageMaker inference contract.

        Like upstream, ``<model_dir>/code:`` is prepended to ``PYTHONPATH`` (for child
        processes); the running interpreter finds the user module through ``sys.path``, which
        the model server sets up.
        """
        model_dir = context.system_properties.get("model_dir")

        code_dir_path = "{}:".format(model_dir + "/code")
        if PYTHON_PATH_ENV in os.environ:
            os.environ[PYTHON_PATH_ENV] = code_dir_path + os.environ[PYTHON_PATH_ENV]
        else:
            os.environ[PYTHON_PATH_ENV] = code_dir_path

        self._service.validate_and_initialize(model_dir=model_dir, context=context)

    @property
    def bidirectional_stream(self) -> Callable[[Any, Any], Any] | None:
        """``(messages, context) -> outputs`` for a bidirectional session, when the user module
        defines ``bidirectional_stream_fn``; None otherwise (the server then refuses sessions)."""
        service = self._service
        if getattr(service, "_bidirectional_stream_fn", None) is None:
            return None
        return service.bidirectional_stream

    @property
    def close_session(self) -> Callable[[str, Any], Any] | None:
        """``(session_id, context)``: the user module's ``close_session_fn``, if it defines one."""
        service = self._service
        if getattr(service, "_close_session_fn", None) is None:
            return None
        return service.close_session
