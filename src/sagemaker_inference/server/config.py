"""The server's configuration: one frozen object, built once from the environment and the CLI.

Nothing else in ``server/`` reads ``os.environ``. Every setting has a list of environment names
(ours first, then the upstream MMS/TorchServe aliases users already set); the first one present
wins, a CLI flag wins over all of them. Invalid values raise ``ConfigError`` naming the variable.

The same parsers serve the toolkit's ``environment.Environment`` (one set of rules for every
reader): an empty value means unset; numbers are ASCII digits (``²`` and ``١`` are not numbers)
and finite (``nan`` and ``inf`` pass no range check, so they are refused by name).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from typing import Any, Callable

DEFAULT_HANDLER = "sagemaker_inference.default_handler_service"
DEFAULT_MAX_REQUEST_SIZE = 6553500  # MMS's default, in bytes
MIB = 1024 * 1024
MIN_DEFAULT_BUFFERED = 64 * MIB
MAX_DEFAULT_BUFFERED = 2048 * MIB


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting and the value."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _int(name: str, raw: str, minimum: int = 0, maximum: int | None = None) -> int:
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        raise ConfigError(f"{name}={raw!r}: expected an integer")
    value = int(text)
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={raw!r}: must be at most {maximum}")
    return value


def _float(name: str, raw: str, minimum: float = 0.0) -> float:
    text = raw.strip()
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{name}={raw!r}: expected a finite number")
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def env_number(environ: Mapping[str, str], name: str, minimum: float = 0.0) -> float | None:
    """``name`` from ``environ`` as a finite number, None when unset or empty (``ConfigError``
    naming it otherwise): the rule every reader of a numeric setting follows."""
    raw = environ.get(name)
    return None if raw is None or not raw.strip() else _float(name, raw, minimum)


def env_megabytes(environ: Mapping[str, str], name: str) -> int | None:
    """``name`` (a size in MB) from ``environ`` in bytes, by ``SAGEMAKER_MAX_PAYLOAD_IN_MB``'s rule."""
    raw = environ.get(name)
    return None if raw is None or not raw.strip() else _megabytes(name, raw)


def _megabytes(name: str, raw: str) -> int:
    return megabytes(name, _float(name, raw), raw)


def megabytes(name: str, value: float, raw: str | None = None) -> int:
    """Megabytes, fractions allowed (``0.5``), to bytes; at least one byte, finite."""
    if not 1 <= value * MIB < 1 << 62:  # also false for NaN
        raise ConfigError(f"{name}={raw if raw is not None else value!r}: expected a size in MB more than 0")
    return int(value * MIB)


def _bytes(name: str, raw: str) -> int:
    return _int(name, raw, minimum=1)


def _text(name: str, raw: str, maximum: int) -> str:
    value = raw.strip()
    if not value or len(value) > maximum or not value.isprintable():
        raise ConfigError(f"{name}={raw!r}: expected 1 to {maximum} printable characters")
    return value


def parse_port_range(name: str, raw: str) -> tuple[int, int]:
    """``"XXXX-YYYY"``, inclusive, as SageMaker sets ``SAGEMAKER_SAFE_PORT_RANGE``."""
    low, sep, high = raw.strip().partition("-")
    if not sep:
        raise ConfigError(f"{name}={raw!r}: expected a port range like 9000-9999")
    first, last = _int(name, low, 1, 65535), _int(name, high, 1, 65535)
    if first > last:
        raise ConfigError(f"{name}={raw!r}: the first port is above the last")
    return first, last


LOG_FORMATS = ("text", "json")


def parse_log_format(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in LOG_FORMATS:
        raise ConfigError(f"{name}={raw!r}: expected text or json")
    return value


_LOG_LEVELS = {"CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARN": 30, "WARNING": 30, "INFO": 20, "DEBUG": 10}


def parse_log_level(name: str, raw: str) -> int:
    """Accept level names (``info``) and numbers (``20``), as SageMaker containers set both."""
    text = raw.strip().upper()
    if text in _LOG_LEVELS:
        return _LOG_LEVELS[text]
    if _INTEGER.fullmatch(text) and not text.startswith("-"):
        return int(text)
    raise ConfigError(f"{name}={raw!r}: expected a log level name (debug, info, ...) or number")


def available_cpus() -> int:
    """CPUs this process may really use: affinity mask, then the cgroup v2/v1 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, int(quota + 0.999)))
    return max(1, count)


def memory_limit() -> int | None:
    """Bytes of memory this process may use: the cgroup v2/v1 limit, else the machine's RAM."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max", or v1's "unlimited" (a page-rounded LONG_MAX)
            return int(text)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def default_buffered_payload(max_request_size: int) -> int:
    """A quarter of the memory limit, at most ``MAX_DEFAULT_BUFFERED``, at least one largest request
    (or ``MIN_DEFAULT_BUFFERED`` when bigger): request bodies must not be what OOM-kills the endpoint."""
    limit = memory_limit()
    quarter = limit // 4 if limit else MAX_DEFAULT_BUFFERED
    return max(max_request_size, MIN_DEFAULT_BUFFERED, min(quarter, MAX_DEFAULT_BUFFERED))


def default_max_connections() -> int:
    """Three quarters of the file descriptors this process may open (the rest: workers, model
    files, logs), at least 16: past it, idle connections are closed to make room."""
    import resource

    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 1 << 16
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(16, soft * 3 // 4)


def visible_gpus(environ: Mapping[str, str]) -> int:
    """NVIDIA GPUs this process may use, without running nvidia-smi (which costs a second)."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    try:
        installed = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        installed = 0
    if visible is None or not installed:
        return installed
    return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])


_OTEL_SWITCHES = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_configured(environ: Mapping[str, str]) -> bool:
    """OpenTelemetry tracing asked for through its standard variables: an exporter or an OTLP
    endpoint named, and the SDK not disabled (``OTEL_SDK_DISABLED``)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return any(environ.get(name, "").strip() for name in _OTEL_SWITCHES)


def _cgroup_cpu_quota() -> float | None:
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota_us = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period_us = int(f.read())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class _Setting:
    field: str
    env: tuple[str, ...]
    parse: Callable[[str, str], Any]


# Precedence: first name present wins. Units are converted by the parser, so
# SAGEMAKER_MAX_PAYLOAD_IN_MB (MB) and MMS_MAX_REQUEST_SIZE (bytes) land in one field.
_SETTINGS = (
    _Setting("port", ("SAGEMAKER_BIND_TO_PORT",), lambda n, v: _int(n, v, minimum=0, maximum=65535)),
    _Setting("workers", ("SAGEMAKER_MODEL_SERVER_WORKERS", "MMS_DEFAULT_WORKERS_PER_MODEL"),
             lambda n, v: _int(n, v, minimum=1)),
    _Setting("response_timeout", ("SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS", "SAGEMAKER_MODEL_SERVER_TIMEOUT",
                                  "MMS_DEFAULT_RESPONSE_TIMEOUT_SECONDS", "TS_DEFAULT_RESPONSE_TIMEOUT"),
             lambda n, v: _float(n, v, minimum=0.001)),
    _Setting("startup_timeout", ("SAGEMAKER_STARTUP_TIMEOUT",), lambda n, v: _float(n, v, minimum=0.001)),
    _Setting("max_request_size", ("SAGEMAKER_MAX_PAYLOAD_IN_MB",), _megabytes),
    _Setting("max_request_size", ("SAGEMAKER_MAX_REQUEST_SIZE", "MMS_MAX_REQUEST_SIZE", "TS_MAX_REQUEST_SIZE"),
             _bytes),
    _Setting("batch_size", ("SAGEMAKER_TS_BATCH_SIZE", "SAGEMAKER_BATCH_SIZE", "MMS_BATCH_SIZE"),
             lambda n, v: _int(n, v, minimum=1)),
    _Setting("max_batch_delay", ("SAGEMAKER_TS_MAX_BATCH_DELAY", "SAGEMAKER_MAX_BATCH_DELAY", "MMS_MAX_BATCH_DELAY"),
             lambda n, v: _float(n, v, minimum=0.0)),
    _Setting("max_buffered_payload", ("SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB",), _megabytes),
    _Setting("max_connections", ("SAGEMAKER_MAX_CONNECTIONS",), lambda n, v: _int(n, v, minimum=1)),
    _Setting("request_read_timeout", ("SAGEMAKER_REQUEST_READ_TIMEOUT",), lambda n, v: _float(n, v, minimum=0.001)),
    _Setting("job_queue_size", ("SAGEMAKER_MODEL_JOB_QUEUE_SIZE", "MMS_JOB_QUEUE_SIZE"),
             lambda n, v: _int(n, v, minimum=1)),
    # Exactly "true", as upstream's environment module and model_server decide it.
    _Setting("multi_model", ("SAGEMAKER_MULTI_MODEL",), lambda n, v: v == "true"),
    _Setting("handler", ("SAGEMAKER_HANDLER",), lambda n, v: v.strip()),
    _Setting("model_root", ("SAGEMAKER_MODEL_ROOT",), lambda n, v: v.strip()),
    _Setting("log_level", ("SAGEMAKER_CONTAINER_LOG_LEVEL",), parse_log_level),
    _Setting("access_log", ("SAGEMAKER_ACCESS_LOG",), _bool),
    _Setting("memory_limit_mb", ("SAGEMAKER_MODEL_MEMORY_LIMIT_MB",), lambda n, v: _int(n, v, minimum=1)),
    _Setting("mme_lru_eviction", ("SAGEMAKER_MME_LRU_EVICTION",), _bool),
    _Setting("mme_max_unpacked_mb", ("SAGEMAKER_MME_MAX_UNPACKED_MB",), lambda n, v: _int(n, v, minimum=1)),
    _Setting("mme_handler_modules", ("SAGEMAKER_MME_HANDLER_MODULES",),
             lambda n, v: tuple(m.strip() for m in v.split(",") if m.strip())),
    # Observability (docs/observability.md).
    _Setting("metrics", ("SAGEMAKER_METRICS",), _bool),
    _Setting("metrics_port", ("SAGEMAKER_METRICS_PORT",), lambda n, v: _int(n, v, minimum=1, maximum=65535)),
    # Kept as text: SageMaker sets it for every container, so it is parsed only when a metrics port needs it.
    _Setting("safe_port_range", ("SAGEMAKER_SAFE_PORT_RANGE",), lambda n, v: v.strip()),
    _Setting("emf", ("SAGEMAKER_METRICS_EMF",), _bool),
    _Setting("emf_interval", ("SAGEMAKER_METRICS_EMF_INTERVAL",), lambda n, v: _float(n, v, minimum=0.1)),
    _Setting("emf_namespace", ("SAGEMAKER_METRICS_EMF_NAMESPACE",), lambda n, v: _text(n, v, maximum=255)),
    _Setting("log_format", ("SAGEMAKER_LOG_FORMAT",), lambda n, v: parse_log_format(n, v)),
    # Streams and sessions (docs/streaming.md).
    _Setting("stateful_sessions", ("SAGEMAKER_ENABLE_STATEFUL_SESSIONS",), _bool),
    _Setting("sessions_expiration", ("SAGEMAKER_SESSIONS_EXPIRATION",), lambda n, v: _float(n, v, minimum=1.0)),
    _Setting("max_stateful_sessions", ("SAGEMAKER_MAX_STATEFUL_SESSIONS",), lambda n, v: _int(n, v, minimum=1)),
    _Setting("bidi_path", ("SAGEMAKER_BIDIRECTIONAL_STREAM_PATH",), lambda n, v: _path(n, v)),
    _Setting("max_bidi_sessions", ("SAGEMAKER_MAX_BIDIRECTIONAL_SESSIONS_PER_WORKER",),
             lambda n, v: _int(n, v, minimum=1, maximum=100000)),
    _Setting("websocket_ping_interval", ("SAGEMAKER_WEBSOCKET_PING_INTERVAL",),
             lambda n, v: _float(n, v, minimum=0.05)),
)


def _path(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.startswith("/") or "?" in value or any(c.isspace() for c in value):
        raise ConfigError(f"{name}={raw!r}: expected a URL path such as /invocations-bidirectional-stream")
    return value


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs to know, validated. Build with ``from_env`` (+ ``replace``)."""

    host: str = "0.0.0.0"
    port: int = 8080
    base_dir: str = "/opt/ml"
    model_dir: str = ""
    model_name: str = "model"
    handler: str = DEFAULT_HANDLER
    workers: int | None = None
    response_timeout: float = 60.0
    startup_timeout: float = 600.0
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    max_buffered_payload: int = 0  # bytes of request bodies held at once; 0 = derived (default_buffered_payload)
    request_read_timeout: float = 60.0  # seconds for a request to arrive (see http/protocol.py)
    max_connections: int = 0  # open client connections; 0 = derived (default_max_connections)
    batch_size: int = 1
    max_batch_delay: float = 100.0  # milliseconds, as MMS/TorchServe
    job_queue_size: int = 1000
    multi_model: bool = False
    model_root: str = ""
    log_level: int = 20
    access_log: bool = False
    memory_limit_mb: int | None = None
    mme_lru_eviction: bool = False
    mme_max_unpacked_mb: int | None = None  # cap on an archive's unpacked size (free disk applies anyway)
    # Installed modules a POST /models "handler" may name, besides the server's own handler and
    # modules inside the model directory; "*" allows any.
    mme_handler_modules: tuple[str, ...] = ()
    python: str = ""  # interpreter for workers; empty = the server's own
    gpus: int = 0
    # Multi-model: (name, directory, handler or "") loaded at start, as MMS's --models with several
    # models (mms_compat); not evictable, routed by name like any registered model.
    startup_models: tuple[tuple[str, str, str], ...] = ()
    # Observability (docs/observability.md)
    metrics: bool = True
    metrics_port: int | None = None  # a second listener for /metrics, /livez, /readyz
    safe_port_range: str | None = None  # "XXXX-YYYY", as SageMaker sets it
    emf: bool = False
    emf_interval: float = 60.0
    emf_namespace: str = "SageMakerInference"
    log_format: str = "text"
    tracing: bool = False  # OpenTelemetry configured through OTEL_* (see tracing_configured)
    # glibc's mmap threshold for the frontend (see supervisor.bound_heap_growth); None: the user set
    # MALLOC_MMAP_THRESHOLD_, which glibc honours itself.
    mmap_threshold: int | None = MIB
    stateful_sessions: bool = False
    sessions_expiration: float = 1200.0  # seconds
    max_stateful_sessions: int = 10000  # per model
    bidi_path: str = "/invocations-bidirectional-stream"
    max_bidi_sessions: int = 64  # open bidirectional sessions per worker; beyond them, 503
    websocket_ping_interval: float = 60.0  # ping a silent WebSocket peer, close it after two silent intervals

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> ServerConfig:
        """Read every setting from ``environ``; keyword overrides (CLI flags) win when not None."""
        values: dict[str, Any] = {}
        for setting in _SETTINGS:
            if setting.field in values:
                continue
            for name in setting.env:
                raw = environ.get(name)
                if raw is not None and raw.strip() != "":
                    values[setting.field] = setting.parse(name, raw)
                    break
        values["base_dir"] = environ.get("SAGEMAKER_BASE_DIR") or "/opt/ml"
        values["gpus"] = visible_gpus(environ)
        values["tracing"] = tracing_configured(environ)
        if "MALLOC_MMAP_THRESHOLD_" in environ:
            values["mmap_threshold"] = None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).resolved()

    def resolved(self) -> ServerConfig:
        """Fill derived defaults (paths under ``base_dir``, worker count) and validate."""
        changes: dict[str, Any] = {}
        if not self.model_dir:
            changes["model_dir"] = os.path.join(self.base_dir, "models" if self.multi_model else "model")
        if not self.model_root:
            changes["model_root"] = os.path.join(self.base_dir, "models")
        if self.workers is None:
            # MME hosts many models: one worker each unless told otherwise (upstream's mme-mms.properties);
            # otherwise one per GPU, else one per usable CPU, as MMS.
            changes["workers"] = 1 if self.multi_model else (self.gpus or available_cpus())
        if not self.max_connections:
            changes["max_connections"] = default_max_connections()
        if not self.max_buffered_payload:
            changes["max_buffered_payload"] = default_buffered_payload(self.max_request_size)
        config = dataclasses.replace(self, **changes) if changes else self
        config._validate()
        return config

    def _validate(self) -> None:
        """Values that reach here from CLI flags bypass the env parsers, so check ranges again.

        A worker count of 0 would never become ready, a timeout of 0 would fail every request:
        refuse them at startup instead. Messages name the flag and its variable.
        """
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port / SAGEMAKER_BIND_TO_PORT={self.port}: must be between 0 and 65535")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers / SAGEMAKER_MODEL_SERVER_WORKERS={self.workers}: must be at least 1")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size / SAGEMAKER_TS_BATCH_SIZE={self.batch_size}: must be at least 1")
        if self.response_timeout <= 0:
            raise ConfigError(f"--timeout / SAGEMAKER_MODEL_SERVER_TIMEOUT={self.response_timeout:g}: "
                              "must be more than 0 seconds")
        if self.max_request_size < 1:
            raise ConfigError(f"--max-payload-mb / SAGEMAKER_MAX_PAYLOAD_IN_MB: {self.max_request_size} bytes "
                              "must be at least 1")
        if self.metrics_port is not None and self.safe_port_range:
            low, high = parse_port_range("SAGEMAKER_SAFE_PORT_RANGE", self.safe_port_range)
            if not low <= self.metrics_port <= high:
                raise ConfigError(f"--metrics-port / SAGEMAKER_METRICS_PORT={self.metrics_port}: must be in "
                                  f"SAGEMAKER_SAFE_PORT_RANGE {low}-{high}")
        if self.metrics_port is not None and self.metrics_port == self.port and self.port:
            raise ConfigError(f"--metrics-port / SAGEMAKER_METRICS_PORT={self.metrics_port}: is the serving port; "
                              "/metrics is served there already")
        if self.emf and not self.metrics:
            raise ConfigError("SAGEMAKER_METRICS_EMF=true needs metrics on: unset SAGEMAKER_METRICS=false")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"--log-format / SAGEMAKER_LOG_FORMAT={self.log_format!r}: expected text or json")
        if self.max_buffered_payload and self.max_buffered_payload < self.max_request_size:
            raise ConfigError(f"SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB={self.max_buffered_payload / MIB:g}: must be at "
                              f"least the largest request ({self.max_request_size / MIB:g} MB, --max-payload-mb / "
                              "SAGEMAKER_MAX_PAYLOAD_IN_MB)")
        if self.request_read_timeout <= 0:
            raise ConfigError(f"SAGEMAKER_REQUEST_READ_TIMEOUT={self.request_read_timeout:g}: must be more than 0 "
                              "seconds")
        for flag, value in (("--timeout / SAGEMAKER_MODEL_SERVER_TIMEOUT", self.response_timeout),
                            ("SAGEMAKER_STARTUP_TIMEOUT", self.startup_timeout),
                            ("--max-batch-delay / SAGEMAKER_TS_MAX_BATCH_DELAY", self.max_batch_delay),
                            ("SAGEMAKER_METRICS_EMF_INTERVAL", self.emf_interval)):
            if not math.isfinite(value):
                raise ConfigError(f"{flag}={value}: expected a finite number")
        if self.max_batch_delay < 0:
            raise ConfigError(f"--max-batch-delay / SAGEMAKER_TS_MAX_BATCH_DELAY={self.max_batch_delay:g}: "
                              "must not be negative")

    @property
    def worker_count(self) -> int:
        return self.workers or 1

    @property
    def max_payload_mb(self) -> int:
        """What ``/execution-parameters`` reports: the limit rounded down to whole MB (at least 1)."""
        return max(1, self.max_request_size // MIB)
