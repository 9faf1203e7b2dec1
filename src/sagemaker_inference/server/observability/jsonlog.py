"""JSON log lines (``SAGEMAKER_LOG_FORMAT=json``): one object per line, for CloudWatch Logs
Insights, Loki, Elasticsearch, ...

Every line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``;
``request_id`` and ``model`` where known (the record's own, else the worker's current batch);
``exception`` with the traceback when there is one; and any extra field a call passed
(``extra={"ModelLoadingTime": ...}``). In a worker, ``sys.stdout`` and ``sys.stderr`` are
replaced by ``LineWriter``s, so a handler's ``print`` becomes a line with logger
``user.stdout`` or ``user.stderr``. Output written by native code straight to file descriptors
1 and 2 bypasses Python and stays as it is.
"""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any, Callable, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is emitted.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}

Context = Callable[[], "tuple[str | None, str | None]"]  # -> (request_id, model)


def _no_context() -> tuple[str | None, str | None]:
    return None, None


def timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"


def line(level: str, logger: str, message: str, created: float | None = None, **fields: Any) -> str:
    """One JSON log line (no newline); ``fields`` that are None are left out."""
    record = {"time": timestamp(time.time() if created is None else created), "level": level, "logger": logger,
              "message": message}
    record.update((k, v) for k, v in fields.items() if v is not None)
    return json.dumps(record, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    def __init__(self, context: Context = _no_context):
        super().__init__()
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        request_id, model = fields.get("request_id"), fields.get("model")
        if request_id is None or model is None:
            current_id, current_model = self.context()
            fields["request_id"] = current_id if request_id is None else request_id
            fields["model"] = current_model if model is None else model
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        return line(record.levelname, record.name, record.getMessage(), record.created, **fields)


class LineWriter(io.TextIOBase):
    """A text stream that turns each complete line written to it into a JSON log line on
    ``target`` (partial lines wait for their end, or for ``flush``)."""

    def __init__(self, target: TextIO, logger: str, level: str = "INFO", context: Context = _no_context):
        super().__init__()
        self.target, self.logger, self.level, self.context = target, logger, level, context
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        if pieces:
            self._emit(pieces)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            pieces, self._partial = [self._partial], ""
            self._emit(pieces)
        self.target.flush()

    def _emit(self, pieces: list[str]) -> None:
        request_id, model = self.context()
        self.target.write("".join(line(self.level, self.logger, piece.rstrip("\r"), request_id=request_id,
                                       model=model) + "\n" for piece in pieces))
        self.target.flush()

    def isatty(self) -> bool:
        return False

    # Code that reaches below the text layer (``sys.stdout.buffer.write``, ``os.write(fileno())``)
    # gets the real stream: those bytes are not wrapped, as native output is not.
    @property
    def buffer(self) -> Any:
        return self.target.buffer

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8") or "utf-8"
