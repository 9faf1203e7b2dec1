"""SageMaker's ``DataProcessing`` for batch transform: ``InputFilter`` on each input record, ``JoinSource=Input``
(join each output record with its input record), ``OutputFilter`` on the joined record.

CSV records are handled as arrays of columns (``$[1:]`` drops the first column); JSON records as parsed JSON.
Joining CSV appends the output's columns to the input's; joining JSON puts the output under ``SageMakerOutput``
in the input object, or, for an input that is not an object, gives ``{"SageMakerInput": ..., "SageMakerOutput":
...}``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sagemaker_inference.local.transform.config import Job
from sagemaker_inference.local.transform.jsonpath import Path


class DataProcessingError(ValueError):
    """A record the filters or the join cannot use (the message says which and why)."""


def _columns(record: bytes) -> list[str]:
    try:
        return next(csv.reader([record.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise DataProcessingError(f"not a CSV record: {exc}") from None


def _csv(value: Any) -> bytes:
    row = value if isinstance(value, list) else [value]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(
        [json.dumps(v) if isinstance(v, (dict, list)) else v for v in row])
    return out.getvalue().encode()


def _json(record: bytes) -> Any:
    try:
        return json.loads(record)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataProcessingError(f"not a JSON record: {exc}") from None


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class DataProcessing:
    def __init__(self, job: Job):
        self.format = job.data_format
        self.input_filter: Path | None = job.input_filter
        self.output_filter: Path | None = job.output_filter
        self.join = job.settings.join_source == "Input"

    def filter_input(self, record: bytes) -> bytes:
        if self.input_filter is None:
            return record
        if self.format == "csv":
            return _csv(self.input_filter.apply(_columns(record)))
        return _dump(self.input_filter.apply(_json(record)))

    def finish(self, record: bytes, output: bytes) -> bytes:
        """The record written for one input record and its output record: joined and filtered as asked."""
        if self.format == "csv":
            value: Any = _columns(record) + _columns(output) if self.join else _columns(output)
            return _csv(self.output_filter.apply(value)) if self.output_filter is not None else _csv(value)
        try:
            parsed_output: Any = json.loads(output)
        except (ValueError, UnicodeDecodeError):
            parsed_output = output.decode("utf-8", "replace")
        joined = parsed_output
        if self.join:
            source = _json(record)
            joined = ({**source, "SageMakerOutput": parsed_output} if isinstance(source, dict)
                      else {"SageMakerInput": source, "SageMakerOutput": parsed_output})
        return _dump(self.output_filter.apply(joined) if self.output_filter is not None else joined)


def split_output(body: bytes, count: int) -> list[bytes]:
    """One output record per input record of a request: the answer's lines, or the items of a JSON array."""
    lines = [line.rstrip(b"\r") for line in body.split(b"\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) == count:
        return lines
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        items = None
    if isinstance(items, list) and len(items) == count:
        return [_dump(item) for item in items]
    raise DataProcessingError(f"the container answered {len(lines)} record(s) for {count}: a join or an output "
                              "filter needs one output record (line) per input record")
