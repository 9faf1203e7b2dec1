"""MMS's configuration (properties file, ``MMS_<KEY>`` variables, CLI) -> our ``ServerConfig``.

Pure: text and mappings in, a ``ServerConfig`` and notes out; nothing here opens a socket.

Precedence is MMS 1.1.11's: ``MMS_<KEY>`` environment variables (only when the file sets
``enable_envvars_config=true``, as the toolkits' files do) win over ``--model-store``/``--models``,
which win over the file; a key repeated later in the file wins (the toolkits append their lines to
a bundled file and rely on this). ``$$NAME$$`` in a value is replaced by the variable ``NAME``.

The startup models (``--models`` or ``load_models``) select the mode: exactly one is served as our
single-model server (``/ping``, ``/invocations``); none is our multi-model server (``/models``), the
Hugging Face MME setup; several are our multi-model server with those loaded at start, routed by
name (``/invocations?model_name=``, the target-model header, ``/models/<name>/invoke``), as MMS.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from sagemaker_inference.server.config import ConfigError, ServerConfig

# Keys with a JVM- or Netty-only meaning: accepted, nothing to do in a Python server.
NO_EFFECT = frozenset({
    "vmargs", "async_logging", "enable_envvars_config", "number_of_netty_threads", "netty_client_threads",
    "use_native_io", "io_ratio", "prefer_direct_buffer", "model_server_home", "metric_time_interval",
    "preload_model", "unregister_model_timeout", "debug", "max_response_size", "enable_metrics_api",
})
# Keys we understand and map onto ServerConfig (see ``server_config``).
MAPPED = frozenset({
    "inference_address", "management_address", "model_store", "load_models", "default_service_handler",
    "default_workers_per_model", "default_response_timeout", "default_response_timeout_seconds",
    "max_request_size", "job_queue_size", "decode_input_request", "number_of_gpu",
})
# Keys whose feature this server does not have: accepted, with a warning naming what is lost.
UNSUPPORTED = {
    "plugins_path": "endpoint plugins are Java classes; they are not loaded",
    "blacklist_env_vars": "workers get the whole environment",
    "cors_allowed_origin": "no CORS headers are sent",
    "cors_allowed_methods": "no CORS headers are sent",
    "cors_allowed_headers": "no CORS headers are sent",
    "keystore": "TLS is not served; terminate it in front of the container",
    "keystore_pass": "TLS is not served; terminate it in front of the container",
    "keystore_type": "TLS is not served; terminate it in front of the container",
    "certificate_file": "TLS is not served; terminate it in front of the container",
    "private_key_file": "TLS is not served; terminate it in front of the container",
}
_ENV_REFERENCE = re.compile(r"\$\$([^$]+)\$\$")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,256}")
ARCHIVE_SUFFIXES = (".mar", ".model", ".tar.gz", ".tgz", ".zip")


def parse_properties(text: str) -> dict[str, str]:
    """Java properties as MMS's launcher and ConfigManager read them: ``key=value`` or
    ``key: value``, ``#``/``!`` comments, surrounding spaces dropped, the last occurrence wins."""
    props: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            props[match.group(1)] = match.group(2).strip()
    return props


def expand(key: str, value: str, environ: Mapping[str, str]) -> str:
    """Replace ``$$NAME$$`` by the variable; an unset one is an error, as in MMS."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigError(f"{key}={value}: Invalid Environment Variable {name} (it is not set)")
        return environ[name]

    return _ENV_REFERENCE.sub(substitute, value)


def effective_properties(file_props: Mapping[str, str], environ: Mapping[str, str], *,
                         model_store: str | None = None, models: Sequence[str] | None = None) -> dict[str, str]:
    """File < CLI < ``MMS_<KEY>`` (when enabled), with ``$$NAME$$`` expanded."""
    props = dict(file_props)
    if model_store:
        props["model_store"] = model_store
    if models:
        props["load_models"] = ",".join(models)
    if props.get("enable_envvars_config", "").strip().lower() == "true":
        for name, value in environ.items():
            if name.startswith("MMS_") and name != "MMS_CONFIG_FILE" and name != "MMS_ASYNC_LOGGING":
                props[name[4:].lower()] = value
    return {key: expand(key, value, environ) for key, value in props.items()}


@dataclasses.dataclass(frozen=True)
class StartupModel:
    """One entry of ``load_models``: its name and the directory (or archive) it names."""

    name: str
    path: str


@dataclasses.dataclass(frozen=True)
class Translation:
    """What ``server_config`` produced: the config, and lines worth logging once at startup."""

    config: ServerConfig
    notes: tuple[str, ...]


def parse_address(key: str, value: str, default_port: int) -> tuple[str, int]:
    """``http://host:port`` -> (host, port). TLS and Unix sockets are refused, not silently dropped."""
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if value.startswith("unix:") or parts.scheme not in ("http", "https"):
        raise ConfigError(f"{key}={value}: only http://host:port addresses are supported")
    if parts.scheme == "https":
        raise ConfigError(f"{key}={value}: TLS is not served by this server; use http:// and terminate TLS "
                          "in front of the container")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{key}={value}: invalid port") from None
    return parts.hostname or "0.0.0.0", default_port if port is None else port


def startup_models(props: Mapping[str, str]) -> list[StartupModel]:
    """``load_models``: ``ALL`` (every non-hidden entry of the store) or ``[name=]path`` entries."""
    spec = props.get("load_models", "").strip()
    store = props.get("model_store", "")
    if not spec:
        return []
    if spec == "ALL":
        if not store or not os.path.isdir(store):
            return []
        entries = sorted(e for e in os.listdir(store) if not e.startswith("."))
        return [StartupModel(_default_name(os.path.join(store, e)), os.path.join(store, e)) for e in entries
                if os.path.isdir(os.path.join(store, e)) or e.endswith(ARCHIVE_SUFFIXES)]
    models = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        name, sep, url = entry.partition("=")
        if not sep:
            name, url = "", entry
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
            raise ConfigError(f"load_models={spec}: {url} is a remote URL; download the model into the image or "
                              "the model directory instead (this server does not fetch models)")
        path = url if os.path.isabs(url) or not store else os.path.join(store, url)
        models.append(StartupModel(name or _default_name(path), path))
    return models


def manifest_of(model_dir: str) -> dict[str, object]:
    """The ``MAR-INF/MANIFEST.json`` model-archiver wrote, or {} when there is none."""
    try:
        with open(os.path.join(model_dir, "MAR-INF", "MANIFEST.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return {}
    model = manifest.get("model") if isinstance(manifest, dict) else None
    return model if isinstance(model, dict) else {}


def _default_name(path: str) -> str:
    """MMS's default: the manifest's ``modelName``, else the last path segment without suffix."""
    name = manifest_of(path).get("modelName")
    if isinstance(name, str) and name:
        return name
    last = os.path.basename(path.rstrip("/"))
    for suffix in ARCHIVE_SUFFIXES:
        if last.endswith(suffix) and len(last) > len(suffix):
            return last[: -len(suffix)]
    return last


def server_config(props: Mapping[str, str], environ: Mapping[str, str]) -> Translation:
    """Map effective MMS properties onto ``ServerConfig`` (environment settings fill the rest)."""
    notes = _notes(props)
    overrides: dict[str, object] = {"host": "127.0.0.1"}  # MMS's default address; the port then comes from
    address = props.get("inference_address")                # SAGEMAKER_BIND_TO_PORT or 8080
    if address:
        overrides["host"], overrides["port"] = parse_address("inference_address", address, 80)
    management = props.get("management_address")
    if management and address and parse_address("management_address", management, 8081) != (
            overrides["host"], overrides["port"]):
        notes.append(f"management_address={management} differs from inference_address: the management API "
                     "(/models) is served on the inference address only")
    handler = props.get("default_service_handler", "").strip()
    if handler:
        overrides["handler"] = handler
    workers = _int(props, "default_workers_per_model", 0)
    if workers:
        overrides["workers"] = workers
    overrides["response_timeout"] = _timeout(props)
    overrides["max_request_size"] = _int(props, "max_request_size", 1)
    overrides["job_queue_size"] = _int(props, "job_queue_size", 1)
    gpus = _int(props, "number_of_gpu", 0)
    if props.get("decode_input_request", "true").strip().lower() != "false":
        notes.append("decode_input_request is not false: bodies reach the handler as bytes, as with "
                     "decode_input_request=false (the SageMaker toolkits' setting)")
    overrides.update(_mode(props, environ))
    config = ServerConfig.from_env(environ, **overrides)
    if gpus is not None and gpus < config.gpus:
        config = dataclasses.replace(config, gpus=gpus)
    return Translation(config, tuple(notes))


def _mode(props: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, object]:
    models = startup_models(props)
    if not models:
        store = props.get("model_store", "").rstrip("/")
        root = store if store and not environ.get("SAGEMAKER_MODEL_ROOT") else None
        return {"multi_model": True, "model_root": root}
    for model in models:
        if not _NAME.fullmatch(model.name) or model.name in (".", ".."):
            raise ConfigError(f"load_models: invalid model name {model.name!r}; use 1-256 letters, digits, '.', "
                              "'_' or '-'")
        if not os.path.isdir(model.path):
            raise ConfigError(f"load_models: {model.path} is not a directory; serve an unpacked model folder "
                              "(model-archiver --archive-format no-archive writes one)")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"load_models: a model name is used twice ({', '.join(names)})")
    if len(models) > 1:  # MMS's several startup models: our multi-model mode, with these loaded at start
        loaded = tuple((m.name, m.path, _manifest_handler(m.path)) for m in models)
        return {**_mode({**props, "load_models": ""}, environ), "startup_models": loaded}
    model = models[0]
    overrides: dict[str, object] = {"multi_model": False, "model_dir": model.path, "model_name": model.name}
    handler = _manifest_handler(model.path)
    if handler:
        overrides["handler"] = handler
    return overrides


def _manifest_handler(model_dir: str) -> str:
    handler = manifest_of(model_dir).get("handler")
    return handler if isinstance(handler, str) else ""


def _notes(props: Mapping[str, str]) -> list[str]:
    notes = []
    for key in sorted(props):
        if key in UNSUPPORTED and props[key]:
            notes.append(f"{key} is ignored: {UNSUPPORTED[key]}")
        elif key not in MAPPED and key not in NO_EFFECT and key not in UNSUPPORTED:
            notes.append(f"unknown MMS property {key!r} ignored")
    return notes


def _int(props: Mapping[str, str], key: str, minimum: int) -> int | None:
    raw = props.get(key, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ConfigError(f"{key}={raw!r}: must be at least {minimum}")
    return value


def _timeout(props: Mapping[str, str]) -> float | None:
    """Seconds. ``default_response_timeout_seconds`` wins when >= 0. MMS reads
    ``default_response_timeout`` as minutes; the toolkits write ``SAGEMAKER_MODEL_SERVER_TIMEOUT``
    there, which this project reads as seconds everywhere, so the file is read the same way."""
    seconds = props.get("default_response_timeout_seconds", "").strip()
    if seconds and seconds.lstrip("-").isdigit() and int(seconds) >= 0:
        return float(seconds) if int(seconds) > 0 else None
    value = _int(props, "default_response_timeout", 1)
    return float(value) if value is not None else None
