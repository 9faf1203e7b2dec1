"""Alias of ``sagemaker_inference.logging``.

The toolkit's own README (and containers copied from it) imports ``from sagemaker_inference import
log, utils`` in the container entrypoint; upstream 1.10.1 has no such module and that import fails.
Here it works and means the same as ``sagemaker_inference.logging``.
"""

from sagemaker_inference.logging import LOGGER_NAME, configure_logger, get_logger

__all__ = ["LOGGER_NAME", "configure_logger", "get_logger"]
