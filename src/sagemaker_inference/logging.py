"""This module contains logging functionality.

The module shadows the standard library's ``logging`` inside this package; ``import logging``
below still reaches the standard library because imports are absolute.
"""

from __future__ import annotations

import logging

LOGGER_NAME = "sagemaker-inference"


def configure_logger() -> None:
    """Add a handler to the library's logger with a formatter that
    includes a timestamp along with the message.

    Like upstream, every call adds another handler and the logger level is left alone.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    handler._sagemaker_inference_toolkit = True  # type: ignore[attr-defined]  # see server/logs.py
    get_logger().addHandler(handler)


def get_logger() -> logging.Logger:
    """Return a logger with the name "sagemaker-inference",
    creating it if necessary.

    Returns:
        logging.Logger: Instance of the Logger class.
    """
    return logging.getLogger(LOGGER_NAME)
