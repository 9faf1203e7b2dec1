"""The emulator's configuration: endpoints, their production variants, and the platform's limits.

``--endpoint NAME=URL`` is one endpoint with the variant ``AllTraffic``; ``--endpoint NAME/VARIANT=URL[:WEIGHT]``
names the variant and its weight (default 1). Repeating a NAME adds variants to that endpoint.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

MAX_BODY = 6_291_456  # InvokeEndpoint's BodyBlob limit in botocore's model
MAX_ASYNC_INPUT = 1024 ** 3  # async inference payloads up to 1 GB
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")  # botocore's EndpointName / VariantName pattern
_WEIGHT = re.compile(r"^(.*):([0-9]+(?:\.[0-9]+)?)$")


class RuntimeConfigError(ValueError):
    """A flag's value is unusable; the message names the flag and the value."""


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    url: str  # the container's base URL, without a trailing slash
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    variants: tuple[Variant, ...]

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    endpoints: dict[str, Endpoint]
    host: str = "127.0.0.1"
    port: int = 8090
    model_data: str | None = None  # multi-model: the S3 prefix stand-in holding <TargetModel>
    model_root: str | None = None  # multi-model: the container's model root, where models are extracted
    async_output: str | None = None
    async_concurrency: int = 4
    async_queue_size: int = 1000
    invocation_timeout: float = 60.0  # InvokeEndpoint: SageMaker gives a container 60 s
    stream_timeout: float = 480.0  # InvokeEndpointWithResponseStream: 8 minutes
    model_load_wait: float = 60.0  # a first call waits this long for its model before ModelNotReadyException


def parse_endpoint(spec: str) -> tuple[str, Variant]:
    """``NAME=URL`` or ``NAME/VARIANT=URL[:WEIGHT]`` -> (endpoint name, variant)."""
    name, sep, url = spec.partition("=")
    if not sep or not url:
        raise RuntimeConfigError(f"--endpoint {spec!r}: expected NAME=URL or NAME/VARIANT=URL[:WEIGHT]")
    endpoint, slash, variant = name.partition("/")
    variant = variant if slash else "AllTraffic"
    for label, value in (("endpoint", endpoint), ("variant", variant)):
        if not (len(value) <= 63 and _NAME.match(value)):
            raise RuntimeConfigError(f"--endpoint {spec!r}: invalid {label} name {value!r} "
                                     "(letters, digits and hyphens, at most 63)")
    weight = 1.0
    matched = _WEIGHT.match(url)
    if matched and _port(matched.group(1)) is not None:  # http://host:8080:2 -> weight 2 (the port is required)
        url, weight = matched.group(1), float(matched.group(2))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuntimeConfigError(f"--endpoint {spec!r}: the container URL must be http://HOST:PORT")
    return endpoint, Variant(variant, url.rstrip("/"), weight)


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def endpoints_from_specs(specs: Sequence[str]) -> dict[str, Endpoint]:
    grouped: dict[str, list[Variant]] = {}
    for spec in specs:
        name, variant = parse_endpoint(spec)
        variants = grouped.setdefault(name, [])
        if any(v.name == variant.name for v in variants):
            raise RuntimeConfigError(f"--endpoint {spec!r}: variant {variant.name!r} of {name!r} given twice")
        variants.append(variant)
    if not grouped:
        raise RuntimeConfigError("give at least one --endpoint NAME=URL")
    for name, variants in grouped.items():
        if sum(v.weight for v in variants) <= 0:
            raise RuntimeConfigError(f"--endpoint {name}: the variants' weights add up to 0")
    return {name: Endpoint(name, tuple(variants)) for name, variants in grouped.items()}
