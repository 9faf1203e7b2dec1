"""Log setup shared by the frontend and the workers: one line per event, to stderr."""

from __future__ import annotations

import logging
import sys
from typing import Callable

FORMAT = "%(asctime)s [%(levelname)s] %(name)s%(request)s: %(message)s"

Context = Callable[[], "tuple[str | None, str | None]"]  # -> (request id, model) of the work under way


class TextFormatter(logging.Formatter):
    """The plain format; a line about a request names it: ``name (request <id>): message``. The id
    is the record's own (``extra={"request_id": ...}``), else the ``context``'s (a worker's batch)."""

    def __init__(self, context: Context | None = None):
        super().__init__(FORMAT)
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        if request_id is None and self.context is not None:
            request_id = self.context()[0]
        record.request = f" (request {request_id})" if request_id else ""
        return super().format(record)


def configure(level: int, log_format: str = "text", context: Context | None = None) -> None:
    """Root handler at ``level``; the toolkit's ``sagemaker-inference`` logger follows it too.

    Upstream never sets a level, so its INFO lines were invisible; we make
    ``SAGEMAKER_CONTAINER_LOG_LEVEL`` (and ``--log-level``) decide for every logger we own.
    ``log_format`` "json": one JSON object per line (``observability/jsonlog.py``); ``context``
    gives the request id and model of what the process is doing, for lines that do not say
    (in text, lines about a request name it).
    """
    root = logging.getLogger()
    if not any(getattr(h, "_sagemaker_inference", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        if log_format == "json":
            from sagemaker_inference.server.observability.jsonlog import JsonFormatter

            handler.setFormatter(JsonFormatter(context) if context is not None else JsonFormatter())
        else:
            handler.setFormatter(TextFormatter(context))
        handler._sagemaker_inference = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("sagemaker-inference", "sagemaker_inference"):
        logging.getLogger(name).setLevel(level)
    # ``model_server`` calls the toolkit's ``configure_logger()`` at import, as upstream; once the
    # root handler is ours its lines would print twice, in two formats: keep ours.
    toolkit = logging.getLogger("sagemaker-inference")
    for added in [h for h in toolkit.handlers if getattr(h, "_sagemaker_inference_toolkit", False)]:
        toolkit.removeHandler(added)
