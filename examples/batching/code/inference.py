"""A batch-aware handler: one model call for a whole batch of requests.

With ``--batch-size 8 --max-batch-delay 50`` (or ``SAGEMAKER_TS_BATCH_SIZE`` and
``SAGEMAKER_TS_MAX_BATCH_DELAY``) the server hands up to 8 concurrent requests to the worker at
once. The toolkit decodes each request with its own Content-Type, calls ``predict_batch_fn``
once with all the decoded inputs, and encodes each prediction with its request's Accept.

The model is a 4 -> 2 linear layer stored in ``model.npz``. A request whose rows do not have 4
numbers gets its own 400; the rest of its batch is answered normally.
"""

import logging
import os

import numpy as np

from sagemaker_inference import errors

logger = logging.getLogger(__name__)


def model_fn(model_dir):
    with np.load(os.path.join(model_dir, "model.npz")) as params:
        return params["weight"], params["bias"]


def predict_batch_fn(inputs, model):
    """One prediction (or exception) per input, in order; a single matrix product for all."""
    weight, bias = model
    width = weight.shape[0]
    logger.debug("predict_batch_fn: %d inputs", len(inputs))
    rows = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in inputs]
    good = [i for i, r in enumerate(rows) if r.ndim == 2 and r.shape[1] == width]
    results = [None if i in good else
               errors.GenericInferenceToolkitError(400, f"expected rows of {width} numbers, got shape {r.shape}")
               for i, r in enumerate(rows)]
    if good:
        outputs = np.concatenate([rows[i] for i in good]) @ weight + bias  # the one model call
        sizes = np.cumsum([len(rows[i]) for i in good])[:-1]
        for i, output in zip(good, np.split(outputs, sizes)):
            results[i] = output
    return results


def predict_fn(data, model):
    """The same model one request at a time: this module also runs on upstream's toolkit."""
    result = predict_batch_fn([data], model)[0]
    if isinstance(result, Exception):
        raise result
    return result

