"""Log setup shared by the frontend and the workers: one line per event, to stderr."""

from __future__ import annotations

import logging
import sys
from typing import Callable

FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"


def configure(level: int, log_format: str = "text",
              context: Callable[[], tuple[str | None, str | None]] | None = None) -> None:
    """Root handler at ``level``; the toolkit's ``sagemaker-inference`` logger follows it too.

    Upstream never sets a level, so its INFO lines were invisible; we make
    ``SAGEMAKER_CONTAINER_LOG_LEVEL`` (and ``--log-level``) decide for every logger we own.
    ``log_format`` "json": one JSON object per line (``observability/jsonlog.py``); ``context``
    gives the request id and model of what the process is doing, for lines that do not say.
    """
    root = logging.getLogger()
    if not any(getattr(h, "_sagemaker_inference", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        if log_format == "json":
            from sagemaker_inference.server.observability.jsonlog import JsonFormatter

            handler.setFormatter(JsonFormatter(context) if context is not None else JsonFormatter())
        else:
            handler.setFormatter(logging.Formatter(FORMAT))
        handler._sagemaker_inference = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("sagemaker-inference", "sagemaker_inference"):
        logging.getLogger(name).setLevel(level)
