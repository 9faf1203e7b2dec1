"""Multi-model endpoints: ``TargetModel`` loaded on first use, as the platform does.

Theory. Per container (variant URL) we keep ``loaded`` (target -> the container's model name, least recently
used first) and ``loading`` (target -> the one task loading it). A call for a loaded target goes straight to
``POST /models/<name>/invoke``. A call for an unloaded one starts the load task, or joins the running one, and
waits at most ``model_load_wait`` seconds: past that it answers ``ModelNotReadyException`` (429) while the load
goes on, so the client's retry finds it loaded. A load copies ``<model-data>/<TargetModel>`` (an archive, as
``model.tar.gz`` on S3, or a folder) to ``<model-root>/<name>/model`` and calls ``POST /models``. A 507 (no room)
unloads the least recently used model with ``DELETE /models/<name>`` and retries, until nothing is left to
unload. A container that answers 404 for a model we think is loaded has dropped it: we forget it and load again.
All of this runs on the one event loop, so the maps need no lock; file copying runs in a thread.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import logging
import shutil
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from sagemaker_inference.local.runtime import errors
from sagemaker_inference.local.runtime.config import Variant

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("sagemaker_inference.local.runtime")

LOAD_TIMEOUT = 600.0  # how long one POST /models may take before the load is failed


@dataclasses.dataclass
class _Cache:
    loaded: collections.OrderedDict[str, str] = dataclasses.field(default_factory=collections.OrderedDict)
    loading: dict[str, asyncio.Task[str]] = dataclasses.field(default_factory=dict)


def model_name(target: str) -> str:
    """The opaque name the container sees (the platform uses an id, not the S3 key)."""
    return hashlib.sha256(target.encode()).hexdigest()[:32]


class MultiModel:
    def __init__(self, client: httpx.AsyncClient, model_data: str, model_root: str, load_wait: float):
        self.client = client
        self.model_data = Path(model_data).resolve()
        self.model_root = Path(model_root).resolve()
        self.load_wait = load_wait
        self._caches: dict[str, _Cache] = {}

    async def invoke_path(self, variant: Variant, target: str) -> str:
        cache = self._caches.setdefault(variant.url, _Cache())
        if target in cache.loaded:
            cache.loaded.move_to_end(target)
            return f"/models/{cache.loaded[target]}/invoke"
        source = self._source(target)
        task = cache.loading.get(target)
        if task is None:
            task = cache.loading[target] = asyncio.ensure_future(self._load(variant, cache, target, source))
            task.add_done_callback(lambda t: (cache.loading.pop(target, None), t.cancelled() or t.exception()))
        try:
            name = await asyncio.wait_for(asyncio.shield(task), self.load_wait)
        except asyncio.TimeoutError:
            raise errors.ModelNotReadyException(f"Model {target} is still loading; try again shortly.") from None
        return f"/models/{name}/invoke"

    def forget(self, variant: Variant, target: str) -> None:
        self._caches.setdefault(variant.url, _Cache()).loaded.pop(target, None)

    def _source(self, target: str) -> Path:
        parts = target.split("/")
        if target.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in target:
            raise errors.ValidationError(f"TargetModel {target!r}: give a relative key inside the model data.")
        source = self.model_data.joinpath(*parts)
        if not source.exists():
            raise errors.ValidationError(f"TargetModel {target!r}: no such model under {self.model_data}.")
        return source

    async def _load(self, variant: Variant, cache: _Cache, target: str, source: Path) -> str:
        name = model_name(target)
        destination = self.model_root / name / "model"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _place, source, destination)
        while True:
            response = await self._call("POST", variant, "/models", {"model_name": name, "url": str(destination)})
            if response.status_code in (200, 201, 409):  # 409: the container already has it (we were restarted)
                break
            if response.status_code == 507 and cache.loaded:
                victim, victim_name = cache.loaded.popitem(last=False)
                logger.info("container %s is out of room: unloading %s (least recently used) to load %s",
                            variant.url, victim, target)
                await self._call("DELETE", variant, f"/models/{victim_name}", None)
                await loop.run_in_executor(None, shutil.rmtree, self.model_root / victim_name, True)
                continue
            raise errors.ModelError(response.status_code, errors.original_message(response.content),
                                    log_location=f"the log of the container at {variant.url}")
        cache.loaded[target] = name
        logger.info("model %s loaded on %s as %s", target, variant.url, name)
        return name

    async def _call(self, method: str, variant: Variant, path: str, payload: object) -> httpx.Response:
        import httpx

        try:
            return await self.client.request(method, variant.url + path, json=payload, timeout=LOAD_TIMEOUT)
        except httpx.TimeoutException:
            raise errors.ModelError(0, f"Loading the model took longer than {LOAD_TIMEOUT:g} s.") from None
        except httpx.TransportError:
            raise errors.ServiceUnavailable(f"The container of variant {variant.name} is not reachable at "
                                            f"{variant.url}.") from None


def _place(source: Path, destination: Path) -> None:
    """Copy a model folder, or extract a tar archive safely, into ``destination`` (replaced if present)."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, destination, symlinks=True)
        return
    try:
        with tarfile.open(source) as archive:
            _check_members(archive, source, destination)
            if hasattr(tarfile, "data_filter"):
                archive.extractall(destination, filter="data")
            else:  # Python < 3.11.4: _check_members already refused what the filter would
                archive.extractall(destination)
    except tarfile.TarError as exc:
        raise errors.ValidationError(f"Model data {source.name} is neither a folder nor a tar archive: {exc}") from None


def _check_members(archive: tarfile.TarFile, source: Path, destination: Path) -> None:
    """No absolute paths, ``..``, links or devices; the unpacked size must fit on the disk."""
    total = 0
    for member in archive.getmembers():
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
            raise errors.ValidationError(f"Model data {source.name}: refusing archive member {member.name!r}.")
        total += member.size
    free = shutil.disk_usage(destination.parent).free
    if total > free:
        raise errors.ValidationError(f"Model data {source.name} unpacks to {total} bytes; {free} are free.")

