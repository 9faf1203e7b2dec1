"""What every check gets: the target's address, the run's options, what discovery learned, and request helpers.

Discovery asks the server only what the contract defines: ``GET /ping``, ``GET /execution-parameters`` (the
payload limit it declares) and ``GET /models`` (present only on multi-model servers).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sagemaker_inference.conformance import wire

if TYPE_CHECKING:
    from sagemaker_inference.conformance.served import ServedServer

SAGEMAKER_PAYLOAD_LIMIT = 6 * 1024 * 1024  # what the platform's InvokeEndpoint accepts


class ConfigurationError(Exception):
    """A bad URL or option given to the kit."""


def default_samples() -> dict[str, bytes]:
    """One valid request body per content type the default handler decodes: a row of four numbers."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array([[1.0, 2.0, 3.0, 4.0]]), allow_pickle=False)
    return {"application/json": b"[[1.0, 2.0, 3.0, 4.0]]", "text/csv": b"1.0,2.0,3.0,4.0",
            "application/x-npy": buffer.getvalue()}


@dataclass
class Options:
    quick: bool = False
    read_timeout: float = 10.0  # seconds a single answer may take before the case counts as a hang
    samples: dict[str, bytes] = field(default_factory=default_samples)
    max_payload: int | None = None  # bytes; None: what /execution-parameters declares, else 6 MiB
    mme_model: str | None = None  # a url the multi-model server can load, for the lifecycle check
    soak: float = 0.0  # seconds of soak; 0: no soak
    slow_connections: int = 500


@dataclass
class Probe:
    host: str
    port: int
    options: Options
    served: ServedServer | None = None
    multi_model: bool = False
    max_payload: int = SAGEMAKER_PAYLOAD_LIMIT
    max_payload_source: str = "the SageMaker limit (6 MiB)"
    notes: list[str] = field(default_factory=list)
    target_model: str | None = None  # set while a multi-model check has a model loaded

    @classmethod
    def for_url(cls, url: str, options: Options, served: ServedServer | None = None) -> Probe:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigurationError(f"URL must be http://HOST[:PORT], got {url!r}")
        return cls(parts.hostname, parts.port or 80, options, served)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def timeout(self) -> float:
        return self.options.read_timeout

    def connect(self, timeout: float | None = None) -> wire.Connection:
        return wire.Connection(self.host, self.port, self.timeout if timeout is None else timeout)

    def send(self, data: bytes, timeout: float | None = None, half_close: bool = False) -> wire.Response:
        """One request on a new connection (raises ``wire.NoResponse``)."""
        return wire.exchange(self.host, self.port, data, self.timeout if timeout is None else timeout, half_close)

    def get(self, path: str, timeout: float | None = None) -> wire.Response:
        return self.send(wire.request("GET", path), timeout)

    def invoke(self, body: bytes, content_type: str = "application/json", accept: str | None = None,
               timeout: float | None = None, extra: dict[str, str] | None = None) -> wire.Response:
        return self.send(self.invocation(body, content_type, accept, extra), timeout)

    def invocation(self, body: bytes, content_type: str = "application/json", accept: str | None = None,
                   extra: dict[str, str] | None = None, keep_alive: bool = True) -> bytes:
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {}), **(extra or {})}
        if not keep_alive:
            headers["Connection"] = "close"
        return wire.request("POST", self.invocations_path, body, headers)

    @property
    def invocations_path(self) -> str:
        """``/invocations``, or on a multi-model server the platform's ``/models/{name}/invoke``."""
        return f"/models/{self.target_model}/invoke" if self.target_model else "/invocations"

    def invoke_sample(self, timeout: float | None = None) -> wire.Response:
        content_type, body = self.sample
        return self.invoke(body, content_type, timeout=timeout)

    @property
    def sample(self) -> tuple[str, bytes]:
        """The first sample (content type, body): what load and liveness checks send."""
        return next(iter(self.options.samples.items()))

    def serves_invocations(self) -> bool:
        """Single-model servers, and multi-model ones while a check has a model loaded."""
        return not self.multi_model or self.target_model is not None

    def discover(self, multi_model: bool | None = None) -> None:
        """Learn whether the server is multi-model and the payload limit it declares; fail if it does not answer.

        Multi-model unless told: ``GET /models`` lists models (MMS also serves it on single-model endpoints) and
        ``/invocations`` does not serve the sample without a target model.
        """
        try:
            self.get("/ping")
        except (wire.NoResponse, OSError) as exc:
            raise ConfigurationError(f"{self.url}/ping did not answer: {exc}") from exc
        if multi_model is None:
            multi_model = _json_has(self._get_json("/models"), "models") and not self._serves_sample()
        self.multi_model = multi_model
        if self.options.max_payload is not None:
            self.max_payload, self.max_payload_source = self.options.max_payload, "--max-payload"
            return
        params = self._get_json("/execution-parameters")
        declared = params.get("MaxPayloadInMB") if isinstance(params, dict) else None
        if isinstance(declared, (int, float)) and declared > 0:
            self.max_payload = int(declared * 1024 * 1024)
            self.max_payload_source = f"/execution-parameters (MaxPayloadInMB {declared})"

    def _serves_sample(self) -> bool:
        try:
            return self.invoke_sample(timeout=30.0).status // 100 == 2
        except (wire.NoResponse, OSError):
            return False

    def _get_json(self, path: str) -> object:
        try:
            response = self.get(path, timeout=5.0)
        except (wire.NoResponse, OSError):
            return None
        if response.status != 200:
            return None
        try:
            return json.loads(response.body)
        except ValueError:
            return None


def _json_has(document: object, key: str) -> bool:
    return isinstance(document, dict) and key in document
