"""A transform job's settings, and how they are decided.

Precedence, as on the platform: a value given for the job (a flag) wins over the container's answer to
``GET /execution-parameters``, which wins over SageMaker's defaults (MaxConcurrentTransforms 1, MaxPayloadInMB 6,
BatchStrategy SingleRecord). Everything is validated before the first request, each error naming its flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sagemaker_inference.local.transform.jsonpath import JSONPathError, Path, parse

SPLIT_TYPES = ("None", "Line", "RecordIO")
COMPRESSION_TYPES = ("None", "Gzip")
BATCH_STRATEGIES = ("SingleRecord", "MultiRecord")
ASSEMBLE_WITH = ("None", "Line")
JOIN_SOURCES = ("None", "Input")
MAX_PAYLOAD_MB = 100  # the platform's ceiling
DEFAULTS: dict[str, Any] = {"MaxConcurrentTransforms": 1, "MaxPayloadInMB": 6, "BatchStrategy": "SingleRecord"}
_CONTAINER_STRATEGY = {"SINGLE_RECORD": "SingleRecord", "MULTI_RECORD": "MultiRecord"}


class TransformConfigError(ValueError):
    """A setting is unusable; the message names the flag."""


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """What the user asked for; ``None`` where the container or the defaults decide."""

    content_type: str | None = None
    accept: str | None = None
    split_type: str = "None"
    compression_type: str = "None"
    assemble_with: str = "None"
    join_source: str = "None"
    input_filter: str | None = None
    output_filter: str | None = None
    batch_strategy: str | None = None
    max_payload_mb: int | None = None
    max_concurrent_transforms: int | None = None
    invocation_timeout: float = 600.0
    max_retries: int = 3


@dataclasses.dataclass(frozen=True)
class Job:
    """The settings the job runs with, after precedence."""

    settings: JobSettings
    batch_strategy: str
    max_payload: int  # bytes
    max_concurrent_transforms: int
    input_filter: Path | None
    output_filter: Path | None

    @property
    def multi_record(self) -> bool:
        return self.batch_strategy == "MultiRecord"

    @property
    def data_format(self) -> str:
        """``csv``, ``json`` or ``other``: how records are parsed for filters and joins."""
        content_type = (self.settings.content_type or "").split(";")[0].strip().lower()
        if content_type == "text/csv":
            return "csv"
        if content_type in ("application/json", "application/jsonlines", "application/x-jsonlines"):
            return "json"
        return "other"

    @property
    def per_record(self) -> bool:
        """Outputs must be matched to their input records (a join or an output filter)."""
        return self.settings.join_source == "Input" or self.output_filter is not None


def _choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TransformConfigError(f"{flag} {value!r}: choose one of {', '.join(choices)}")


def validate(settings: JobSettings) -> None:
    _choice("--split-type", settings.split_type, SPLIT_TYPES)
    _choice("--compression-type", settings.compression_type, COMPRESSION_TYPES)
    _choice("--assemble-with", settings.assemble_with, ASSEMBLE_WITH)
    _choice("--join-source", settings.join_source, JOIN_SOURCES)
    if settings.batch_strategy is not None:
        _choice("--batch-strategy", settings.batch_strategy, BATCH_STRATEGIES)
    if settings.max_payload_mb is not None and not 1 <= settings.max_payload_mb <= MAX_PAYLOAD_MB:
        raise TransformConfigError(f"--max-payload {settings.max_payload_mb}: from 1 to {MAX_PAYLOAD_MB} MB")
    if settings.max_concurrent_transforms is not None and settings.max_concurrent_transforms < 1:
        raise TransformConfigError(f"--max-concurrent-transforms {settings.max_concurrent_transforms}: at least 1")
    if not settings.invocation_timeout > 0 or settings.max_retries < 0:
        raise TransformConfigError("--timeout must be positive and --max-retries at least 0")
    filtering = settings.input_filter or settings.output_filter or settings.join_source == "Input"
    if filtering and settings.split_type == "RecordIO":
        raise TransformConfigError("--input-filter, --output-filter and --join-source Input work on CSV or JSON "
                                   "records, not RecordIO")


def _filter(flag: str, text: str | None) -> Path | None:
    if text is None:
        return None
    try:
        return parse(text)
    except JSONPathError as exc:
        raise TransformConfigError(f"{flag}: {exc}") from None


def _container_value(answer: Mapping[str, Any], key: str) -> Any:
    value = answer.get(key)
    if key == "BatchStrategy":
        return _CONTAINER_STRATEGY.get(str(value).upper()) if value is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def resolve(settings: JobSettings, container_answer: Mapping[str, Any]) -> Job:
    """Flags > ``/execution-parameters`` > defaults; then the checks that need the final values."""
    validate(settings)
    given: dict[str, Any] = {"MaxConcurrentTransforms": settings.max_concurrent_transforms,
                             "MaxPayloadInMB": settings.max_payload_mb, "BatchStrategy": settings.batch_strategy}
    final = {key: given[key] if given[key] is not None else _container_value(container_answer, key) or default
             for key, default in DEFAULTS.items()}
    job = Job(settings, final["BatchStrategy"], min(int(final["MaxPayloadInMB"]), MAX_PAYLOAD_MB) * 1024 * 1024,
              int(final["MaxConcurrentTransforms"]), _filter("--input-filter", settings.input_filter),
              _filter("--output-filter", settings.output_filter))
    if (job.per_record or job.input_filter) and job.data_format == "other":
        raise TransformConfigError("--input-filter, --output-filter and --join-source Input need --content-type "
                                   "text/csv, application/json or application/jsonlines")
    if job.per_record and job.data_format == "csv" and settings.split_type == "None":
        raise TransformConfigError("--join-source Input and --output-filter on CSV need --split-type Line")
    return job
