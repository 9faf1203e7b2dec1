"""This module contains the definition of the default inference handler,
which provides a bare-bones implementation of default inference functions.

Framework containers subclass ``DefaultInferenceHandler`` and override its methods, with or
without the trailing ``context`` parameter (the transformer passes it only when the signature
has room for it). ``decoder.decode``, ``encoder.encode``, ``encoder.SUPPORTED_CONTENT_TYPES``
and ``utils.parse_accept`` are looked up through their modules on each call so that tests can
patch them.
"""

from __future__ import annotations

import os
import textwrap
from typing import Any

from sagemaker_inference import _mime, content_types, decoder, encoder, errors, parameters, utils


class DefaultInferenceHandler:
    """Bare-bones implementation of default inference functions."""

    def default_model_fn(self, model_dir: str, context: Any = None) -> Any:
        """Function responsible for loading the model.

        Args:
            model_dir (str): The directory where model files are stored.
            context (obj): the request context (default: None).

        Returns:
            obj: the loaded model.
        """
        raise NotImplementedError(
            textwrap.dedent(
                """
            Please provide a model_fn implementation.
            See documentation for model_fn at https://sagemaker.readthedocs.io/en/stable/
            """
            )
        )

    def default_input_fn(self, input_data: Any, content_type: Any, context: Any = None) -> Any:
        """Function responsible for deserializing the input data into an object for prediction.

        Args:
            input_data (obj): the request data.
            content_type (str): the request content type.
            context (obj): the request context (default: None).

        Returns:
            obj: data ready for prediction.
        """
        return decoder.decode(input_data, content_type)

    def default_predict_fn(self, data: Any, model: Any, context: Any = None) -> Any:
        """Function responsible for model predictions.

        Args:
            model (obj): model loaded by the model_fn.
            data: deserialized data returned by the input_fn.
            context (obj): the request context (default: None).

        Returns:
            obj: prediction result.
        """
        raise NotImplementedError(
            textwrap.dedent(
                """
            Please provide a predict_fn implementation.
            See documentation for predict_fn at https://sagemaker.readthedocs.io/en/stable/
            """
            )
        )

    def default_output_fn(self, prediction: Any, accept: str, context: Any = None) -> tuple[Any, str]:
        """Function responsible for serializing the prediction result to the desired accept type.

        The Accept value is negotiated against ``encoder.SUPPORTED_CONTENT_TYPES``: q-values and
        wildcards are honoured (``*/*`` and ``application/*`` prefer
        SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT), parameters such as ``charset`` are ignored, and
        ties go to the type listed first, as upstream.

        Args:
            prediction (obj): prediction result returned by the predict_fn.
            accept (str): accept header expected by the client.
            context (obj): the request context (default: None).

        Returns:
            tuple: the encoded prediction and the content type chosen.

        Raises:
            errors.NotAcceptableError: no supported type is acceptable (an
                ``UnsupportedFormatError``; HTTP 406).
        """
        ranges = utils.parse_accept(accept)
        supported = encoder.SUPPORTED_CONTENT_TYPES
        if len(ranges) == 1 and ranges[0] in supported:
            content_type = ranges[0]  # the common case: one exact type, nothing to negotiate
        else:
            default = os.environ.get(parameters.DEFAULT_INVOCATIONS_ACCEPT_ENV, content_types.JSON)
            content_type = _mime.negotiate(ranges, _mime.preference(default, supported))
        if content_type is None:
            raise errors.NotAcceptableError(
                accept, f"Cannot produce any type accepted ({accept}); supported types: {', '.join(sorted(supported))}."
            )
        return encoder.encode(prediction, content_type), content_type
