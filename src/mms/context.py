"""``mms.context``: the context handed to ``initialize(context)`` and ``handle(data, context)``."""

from sagemaker_inference.context import Context, RequestProcessor

__all__ = ["Context", "RequestProcessor"]
