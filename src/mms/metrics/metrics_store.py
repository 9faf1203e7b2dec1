"""``mms.metrics.metrics_store``: what ``context.metrics`` is."""

from sagemaker_inference.context import MetricsStore

__all__ = ["MetricsStore"]
