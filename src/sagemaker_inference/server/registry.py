"""The models this server knows, and the state each is in.

A model is ``LOADING`` from the moment its name is taken (so a second load of the same name is a
conflict, not a race), ``READY`` once every worker has loaded it, ``UNLOADING`` while its workers
drain and stop (new requests for it get 404 from then on). A failed load removes the name again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import shutil
import time
from collections.abc import Sequence
from typing import Callable

from sagemaker_inference.server.archives import Extraction
from sagemaker_inference.server.config import ServerConfig
from sagemaker_inference.server.observability.counters import ModelCounters
from sagemaker_inference.server.workers.pool import ModelSpec, WorkerGroup
from sagemaker_inference.server.workers.spawn import Spawned
from sagemaker_inference.server.workers.worker import Worker

logger = logging.getLogger("sagemaker_inference.server")


class ModelState(enum.Enum):
    LOADING = "LOADING"
    READY = "READY"
    UNLOADING = "UNLOADING"


class LoadError(Exception):
    """A model could not be loaded; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


class Model:
    __slots__ = ("name", "url", "spec", "group", "state", "loaded_at_startup", "registered_at", "last_used",
                 "memory_estimate", "memory_per_worker", "memory_fixed")

    def __init__(self, name: str, url: str, group: WorkerGroup, loaded_at_startup: bool):
        self.name, self.url, self.group = name, url, group
        self.spec = group.spec
        self.state = ModelState.LOADING
        self.loaded_at_startup = loaded_at_startup
        self.registered_at = time.time()
        self.last_used = time.monotonic()
        self.memory_estimate = 0  # bytes committed for this model (all its workers)
        self.memory_per_worker = 0
        self.memory_fixed = 0  # bytes that do not scale with workers (an archive unpacked on tmpfs)

    def describe(self) -> dict[str, object]:
        spec = self.spec
        return {
            "modelName": self.name,
            "modelUrl": self.url,
            "runtime": "python",
            "minWorkers": spec.workers,
            "maxWorkers": spec.workers,
            "batchSize": spec.batch_size,
            "maxBatchDelay": int(spec.max_batch_delay * 1000),
            "loadedAtStartup": self.loaded_at_startup,
            "requests": self.group.requests_sent,
            "batches": self.group.batches_sent,
            "status": self.state.value,
            "workers": self.group.describe(),
        }


class ModelRegistry:
    def __init__(self, config: ServerConfig, children: dict[int, Worker],
                 on_change: Callable[[], None] = lambda: None):
        self.config = config
        self.children = children
        self.models: dict[str, Model] = {}
        self.on_change = on_change
        # Multi-model: names being prepared or loaded by the management API -> bytes reserved for
        # them, and the private directories archives were unpacked into (deleted on unload).
        self.reservations: dict[str, int] = {}
        self.unpacked: dict[str, str] = {}
        self.unpacking: dict[str, Extraction] = {}  # archives being unpacked (cancelled at shutdown)

    def spec(self, name: str, model_dir: str, *, handler: str | None = None, workers: int | None = None,
             batch_size: int | None = None, max_batch_delay_ms: float | None = None,
             response_timeout: float | None = None) -> ModelSpec:
        """A spec with the server's defaults for whatever the caller leaves out."""
        c = self.config
        return ModelSpec(name, model_dir, handler or c.handler, workers or c.worker_count,
                         batch_size or c.batch_size,
                         (c.max_batch_delay if max_batch_delay_ms is None else max_batch_delay_ms) / 1000.0,
                         response_timeout or c.response_timeout, c.job_queue_size,
                         c.sessions_expiration, c.max_stateful_sessions, c.max_bidi_sessions)

    def get(self, name: str) -> Model | None:
        model = self.models.get(name)
        return model if model is not None and model.state == ModelState.READY else None

    @property
    def healthy(self) -> bool:
        """Every model loaded and at least one worker of each alive."""
        return all(m.state == ModelState.READY and m.group.healthy for m in self.models.values())

    async def load(self, spec: ModelSpec, url: str, *, at_startup: bool = False,
                   prespawned: Sequence[Spawned] = ()) -> Model:
        """Take the name, start the workers, wait until all loaded; ``LoadError`` otherwise."""
        if spec.name in self.models:
            raise LoadError(409, "ConflictStatusException", f"Model {spec.name} is already registered.")
        group = WorkerGroup(spec, python=self.config.python, children=self.children, log_level=self.config.log_level,
                            gpus=self.config.gpus, on_change=lambda g: self.on_change())
        group.log_format = self.config.log_format
        if self.config.metrics:
            group.counters = ModelCounters(spec.name)
        model = self.models[spec.name] = Model(spec.name, url, group, at_startup)
        started = time.monotonic()
        try:
            ok = await group.start(prespawned)
        except BaseException:
            self.models.pop(spec.name, None)
            await group.stop()
            raise
        if not ok:
            self.models.pop(spec.name, None)
            await group.stop()
            reason = group.load_error or "a worker exited while loading"
            raise LoadError(507 if group.load_status == 507 else 500, "InternalServerException",
                            f"Failed to start workers: {reason}")
        model.state = ModelState.READY
        if group.counters is not None:
            group.counters.load_seconds = time.monotonic() - started
        logger.debug("model %r ready in %.2f s", spec.name, time.monotonic() - started)
        self.on_change()
        return model

    async def unload(self, name: str, drain_timeout: float) -> None:
        model = self.models.get(name)
        if model is None or model.state != ModelState.READY:
            raise LoadError(404, "ModelNotFoundException", f"Model not found: {name}")
        model.state = ModelState.UNLOADING
        try:
            await model.group.stop(drain_timeout)
        finally:
            self.models.pop(name, None)
            self.on_change()

    def taken(self, name: str) -> bool:
        """The name is registered, or a management load of it is under way."""
        return name in self.models or name in self.reservations

    def page(self, offset: int, limit: int) -> tuple[list[Model], bool]:
        """Models sorted by name from ``offset``; True when MMS would send a next page token."""
        names = sorted(self.models)
        return [self.models[n] for n in names[offset:offset + limit]], offset + limit <= len(names)

    def memory_committed(self) -> int:
        """Estimated bytes of every model loaded, loading, or reserved for a load."""
        return sum(m.memory_estimate for m in self.models.values()) + sum(self.reservations.values())

    def memory_loading(self) -> int:
        """Estimated bytes of loads not finished yet (not visible in measured memory use)."""
        return sum(self.reservations.values())

    def least_recently_used(self, keep: str | None = None) -> list[Model]:
        """Ready models that may be evicted, least recently used first (not ``keep``, not one being
        unloaded already: its memory is someone else's to count on)."""
        ready = [m for m in self.models.values()
                 if m.state == ModelState.READY and not m.loaded_at_startup and m.name not in self.reservations
                 and m.name != keep]
        return sorted(ready, key=lambda m: m.last_used)

    def request_stats(self) -> list[asyncio.Future[None]]:
        """Ask every ready worker of every model for its figures (see ``WorkerGroup.request_stats``)."""
        return [f for m in self.models.values() for f in m.group.request_stats()]

    def cut_drain(self) -> None:
        """A second stop signal: stop waiting for requests (see ``WorkerGroup.cut_drain``)."""
        for model in list(self.models.values()):
            model.group.cut_drain()

    async def stop_all(self, drain_timeout: float) -> None:
        for extraction in list(self.unpacking.values()):
            # The child is killed and its directory deleted now; the load then fails (503).
            await asyncio.get_running_loop().run_in_executor(None, extraction.cancel)
        await asyncio.gather(*(m.group.stop(drain_timeout) for m in list(self.models.values())))
        for directory in self.unpacked.values():
            shutil.rmtree(directory, ignore_errors=True)  # archives unpacked for models loaded at shutdown
        self.unpacked.clear()
