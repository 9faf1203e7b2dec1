"""``mms.metrics.metric``."""

from mms.metrics.unit import Units
from sagemaker_inference.context import Metric

MetricUnit = Units()

__all__ = ["Metric", "MetricUnit"]
