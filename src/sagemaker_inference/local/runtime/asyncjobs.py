"""InvokeEndpointAsync: a bounded queue of jobs run by a fixed number of tasks.

Theory: ``submit`` validates and enqueues without awaiting (the client gets 202 at once) or refuses with
``ServiceUnavailable`` when the queue is full, so memory is bounded by ``async_queue_size`` small job records
(payloads stay on disk until a job starts). ``async_concurrency`` runner tasks take jobs in order. A job that
waited longer than its ``RequestTTLSeconds`` is not run: its failure file says so. A job runs with its own
``InvocationTimeoutSeconds``. Every job ends in exactly one file, output or failure, written to a temporary name
and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sagemaker_inference.local.runtime import errors
from sagemaker_inference.local.runtime.config import MAX_ASYNC_INPUT, Variant

if TYPE_CHECKING:
    from sagemaker_inference.local.runtime.operations import Runtime
    from sagemaker_inference.server.http.parser import HTTPRequest

logger = logging.getLogger("sagemaker_inference.local.runtime")

DEFAULT_TTL = 21600  # 6 hours, the platform's default and maximum
DEFAULT_TIMEOUT = 900  # 15 minutes; at most 3600
_SEGMENT = re.compile(r"^[A-Za-z0-9._=-]+$")


@dataclasses.dataclass
class AsyncJob:
    inference_id: str
    variant: Variant
    input: Path
    headers: dict[str, str]
    output: Path
    failure: Path
    expires: float  # monotonic time after which it must not start
    timeout: float


def input_path(location: str) -> Path:
    """``file:///abs/path`` or a plain path -> an existing regular file of at most 1 GB."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
    elif parts.scheme == "":
        path = Path(location)
    else:
        raise errors.ValidationError(f"InputLocation {location!r}: the local emulator reads file:// URIs or paths "
                                     f"(not {parts.scheme}://).")
    if not path.is_file():
        raise errors.ValidationError(f"InputLocation {location!r}: no such file.")
    if path.stat().st_size > MAX_ASYNC_INPUT:
        raise errors.ValidationError(f"InputLocation {location!r}: the payload is over 1 GB.")
    return path.resolve()


def _bounded_int(request: HTTPRequest, header: bytes, default: int, low: int, high: int) -> int:
    raw = request.header(header)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise errors.ValidationError(f"{header.decode()} must be an integer from {low} to {high}.")
    return value


def _segments(request: HTTPRequest, header: bytes) -> list[str]:
    raw = request.header(header)
    if raw is None:
        return []
    parts = [p for p in raw.decode("latin-1").split("/") if p]
    if not all(_SEGMENT.match(p) and p not in (".", "..") for p in parts):
        raise errors.ValidationError(f"{header.decode()} {raw.decode('latin-1')!r}: use letters, digits, '.', "
                                     "'_', '=', '-' and '/' only.")
    return parts


class AsyncJobs:
    def __init__(self, runtime: Runtime | None, output_dir: str, concurrency: int, queue_size: int):
        self.runtime = runtime
        self.output_dir = Path(output_dir).resolve()
        self._queue: asyncio.Queue[AsyncJob] = asyncio.Queue(queue_size)
        self._concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._tasks = [asyncio.ensure_future(self._run()) for _ in range(self._concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def submit(self, variant: Variant, request: HTTPRequest, headers: dict[str, str]) -> AsyncJob:
        location = request.header(b"x-amzn-sagemaker-inputlocation")
        if location is None:
            raise errors.ValidationError("InputLocation (X-Amzn-SageMaker-InputLocation) is required.")
        source = input_path(location.decode("utf-8", "replace"))
        ttl = _bounded_int(request, b"x-amzn-sagemaker-requestttlseconds", DEFAULT_TTL, 60, 21600)
        timeout = _bounded_int(request, b"x-amzn-sagemaker-invocationtimeoutseconds", DEFAULT_TIMEOUT, 1, 3600)
        given = request.header(b"x-amzn-sagemaker-inference-id")
        inference_id = given.decode("latin-1") if given else str(uuid.uuid4())
        file_id = str(uuid.uuid4())
        extension = _segments(request, b"x-amzn-sagemaker-s3outputpathextension")
        filename = _segments(request, b"x-amzn-sagemaker-filename")
        if len(filename) > 1:
            raise errors.ValidationError("X-Amzn-SageMaker-Filename must be a file name, not a path.")
        output = self.output_dir.joinpath(*extension, filename[0] if filename else f"{file_id}.out")
        failure = self.output_dir.joinpath("failures", *extension, f"{file_id}-error.out")
        job = AsyncJob(inference_id, variant, source, headers, output, failure, time.monotonic() + ttl, timeout)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise errors.ServiceUnavailable("Too many asynchronous requests are queued; try again later.") from None
        return job

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._execute(job)
            except Exception:
                logger.exception("async inference %s failed unexpectedly", job.inference_id)
                await _write(job.failure, b"Internal failure while running the request.")

    async def _execute(self, job: AsyncJob) -> None:
        if time.monotonic() > job.expires:
            await _write(job.failure, b"Request expired: it waited longer than its RequestTTLSeconds.")
            return
        assert self.runtime is not None
        loop = asyncio.get_running_loop()
        try:
            body = await loop.run_in_executor(None, job.input.read_bytes)
        except OSError as exc:
            await _write(job.failure, f"Could not read the input {job.input}: {exc}".encode())
            return
        try:
            response = await self.runtime.post(job.variant, "/invocations", body, job.headers, job.timeout)
        except errors.APIError as exc:
            await _write(job.failure, exc.message.encode())
            return
        if response.status_code >= 400:
            await _write(job.failure, response.content)
        else:
            await _write(job.output, response.content)
        logger.info("async inference %s: %d -> %s", job.inference_id, response.status_code,
                    job.output if response.status_code < 400 else job.failure)


async def _write(path: Path, data: bytes) -> None:
    await asyncio.get_running_loop().run_in_executor(None, _write_file, path, data)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
