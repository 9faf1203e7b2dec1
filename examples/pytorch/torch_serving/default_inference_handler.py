"""Step 1: the inference handler: load a TorchScript model, tensors in, tensors out.

The model server calls these defaults for every function the user's ``inference.py`` does not
define (a model directory may ship no code at all). Decoding and encoding are the toolkit's own
(JSON, CSV, NPY in; JSON, CSV, NPY out, chosen from the Accept header); this handler only
converts between numpy arrays and tensors.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch

from sagemaker_inference import decoder, default_inference_handler

MODEL_FILE = "model.pt"


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class DefaultPytorchInferenceHandler(default_inference_handler.DefaultInferenceHandler):
    def default_model_fn(self, model_dir: str, context: Any = None) -> torch.jit.ScriptModule:
        """Loads ``model.pt``, a TorchScript model (``torch.jit.script(model).save(...)``).

        Args:
            model_dir: a directory where the model is saved.
            context (obj): the request context (default: None).

        Returns: the TorchScript model, in eval mode, on the GPU when there is one.
        """
        path = os.path.join(model_dir, MODEL_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no {MODEL_FILE} in {model_dir}: save a TorchScript model there, "
                                    "or define model_fn in code/inference.py")
        with warnings.catch_warnings():
            # torch 2.x deprecates TorchScript in favour of torch.export, but it is still the format
            # SageMaker PyTorch models are saved in and torch.jit.load still loads it.
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(path, map_location=_device())
        return model.eval()

    def default_input_fn(self, input_data: Any, content_type: str, context: Any = None) -> torch.Tensor:
        """Decodes JSON, CSV or NPY with the toolkit's decoder, then makes a float32 tensor.

        Args:
            input_data: the request body (``str`` for JSON and CSV, ``bytes`` otherwise).
            content_type: the request's Content-Type.
            context (obj): the request context (default: None).

        Returns: a ``torch.float32`` tensor on the model's device.
        """
        array = decoder.decode(input_data, content_type)
        return torch.from_numpy(np.asarray(array, dtype=np.float32)).to(_device())

    def default_predict_fn(self, data: torch.Tensor, model: Any, context: Any = None) -> torch.Tensor:
        """Calls the model on the decoded tensor, without autograd bookkeeping.

        Args:
            data: the tensor made by ``default_input_fn``.
            model: the model loaded by ``default_model_fn``.
            context (obj): the request context (default: None).

        Returns: the model's output tensor.
        """
        with torch.no_grad():
            return model(data)

    def default_output_fn(self, prediction: Any, accept: str, context: Any = None) -> Any:
        """Moves a tensor to numpy and lets the toolkit encode it for the Accept header.

        Args:
            prediction: what ``default_predict_fn`` returned.
            accept: the request's Accept header (a list and q-values are fine).
            context (obj): the request context (default: None).

        Returns: ``(body, content_type)``, the body in JSON, CSV or NPY.
        """
        if isinstance(prediction, torch.Tensor):
            prediction = prediction.detach().cpu().numpy()
        return super().default_output_fn(prediction, accept, context)
