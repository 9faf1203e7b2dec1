"""``mms.service``: ``PredictionException`` (its ``error_code`` becomes the HTTP status) and
``emit_metrics``. MMS's ``Service`` wrapper is the worker's own business and is not provided:
our worker (``sagemaker_inference.server.workers.process``) plays its part."""

from __future__ import annotations

import logging
from typing import Any

from sagemaker_inference.context import PredictionException

PREDICTION_METRIC = "PredictionTime"
logger = logging.getLogger(__name__)

__all__ = ["PREDICTION_METRIC", "PredictionException", "emit_metrics"]


def emit_metrics(metrics: Any) -> None:
    """Log each metric as ``[METRICS]<line>``, as MMS."""
    if metrics:
        for metric in metrics:
            logger.info("[METRICS]%s", str(metric))
