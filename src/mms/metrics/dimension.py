"""``mms.metrics.dimension``."""

from sagemaker_inference.context import Dimension

__all__ = ["Dimension"]
