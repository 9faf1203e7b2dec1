"""``mms.metrics.unit``: unit names, as MMS prints them."""

from __future__ import annotations

from sagemaker_inference.context import _UNITS


class Units:
    """``Units().units`` maps ``ms``, ``s``, ``percent``, ... to ``Milliseconds``, ``Seconds``, ..."""

    def __init__(self) -> None:
        self.units = dict(_UNITS)
