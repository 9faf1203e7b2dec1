"""``mms.metrics.metric_encoder``: JSON encoding of metrics and dimensions."""

from __future__ import annotations

from json import JSONEncoder
from typing import Any

from sagemaker_inference.context import Dimension, Metric


class MetricEncoder(JSONEncoder):
    """Encodes ``Metric`` and ``Dimension`` objects through their ``to_dict``."""

    def default(self, o: Any) -> Any:
        if isinstance(o, (Metric, Dimension)):
            return o.to_dict()
        return JSONEncoder.default(self, o)
