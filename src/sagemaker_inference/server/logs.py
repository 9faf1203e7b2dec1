"""Log setup shared by the frontend and the workers: one line per event, to stderr."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"


def configure(level: int) -> None:
    """Root handler at ``level``; the toolkit's ``sagemaker-inference`` logger follows it too.

    Upstream never sets a level, so its INFO lines were invisible; we make
    ``SAGEMAKER_CONTAINER_LOG_LEVEL`` (and ``--log-level``) decide for every logger we own.
    """
    root = logging.getLogger()
    if not any(getattr(h, "_sagemaker_inference", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._sagemaker_inference = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("sagemaker-inference", "sagemaker_inference"):
        logging.getLogger(name).setLevel(level)
