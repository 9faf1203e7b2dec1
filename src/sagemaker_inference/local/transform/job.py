"""Run a transform job: every input object through the container, outputs assembled in input order.

Theory. One object at a time; inside it, requests are produced lazily from the stream of records and at most
``MaxConcurrentTransforms`` are in flight (a window): the oldest is awaited before a new one is sent, and its
output is written as soon as it is back, so outputs keep input order whatever the concurrency and memory holds
at most a window of requests. An object's output goes to ``<name>.out.partial`` and is renamed to ``<name>.out``
only when every record succeeded; a failed object leaves no ``.out`` (the partial file is removed), its failure
names the file, the record and the container's status and message, the remaining requests of that object are
cancelled, and the job goes on with the next object and exits 1 at the end. A re-run skips objects whose ``.out``
exists (complete by construction) unless ``force``.

Retries: a container 5xx, a timeout or a lost connection is retried up to ``max_retries`` times, as the platform
does (``InvocationsMaxRetries``, default 3); a 4xx is the record's fault and fails at once.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagemaker_inference.local.transform import records as records_module
from sagemaker_inference.local.transform.config import Job
from sagemaker_inference.local.transform.dataprocessing import DataProcessing, DataProcessingError, split_output
from sagemaker_inference.local.transform.jsonpath import JSONPathError
from sagemaker_inference.local.transform.progress import Clock, Progress
from sagemaker_inference.local.transform.records import InputObject, RecordError, Request

if TYPE_CHECKING:
    import httpx

MAX_MESSAGE = 512


class RecordFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclasses.dataclass
class Summary:
    objects: int = 0
    skipped: int = 0
    records: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    input_bytes: int = 0
    seconds: float = 0.0

    def text(self) -> str:
        rate = self.input_bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
        return (f"objects: {self.objects} ({self.objects - self.skipped - len(self.failures)} transformed, "
                f"{self.skipped} skipped, {len(self.failures)} failed); records: {self.records}; "
                f"{self.seconds:.1f} s ({self.records / self.seconds if self.seconds > 0 else 0:.0f} records/s, "
                f"{rate:.1f} MB/s)")


def input_objects(source: Path) -> list[tuple[Path, str]]:
    """(file, its key relative to the input) for a file or every file under a folder, sorted; hidden files
    and our own ``.partial`` files are not inputs."""
    if source.is_file():
        return [(source, source.name)]
    found = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found.append((path, relative.as_posix()))
    return found


class TransformJob:
    def __init__(self, job: Job, client: httpx.AsyncClient, url: str, progress: Progress):
        self.job, self.client, self.url, self.progress = job, client, url.rstrip("/"), progress
        self.processing = DataProcessing(job)
        settings = job.settings
        self.headers = {k: v for k, v in (("Content-Type", settings.content_type), ("Accept", settings.accept))
                        if v is not None}
        self.line_assembly = settings.assemble_with == "Line"

    async def run(self, source: Path, output: Path, force: bool) -> Summary:
        summary = Summary()
        clock = Clock()
        for path, key in input_objects(source):
            summary.objects += 1
            target = output / f"{key}.out"
            if target.exists() and not force:
                summary.skipped += 1
                self.progress.advance(0, path.stat().st_size)
                self.progress.line(f"{key}: skipped, {target} is complete (--force to redo)")
                continue
            try:
                count, size = await self.transform_object(path, target)
            except RecordFailed as exc:
                failure = f"{key}: {exc.message}"
                summary.failures.append(failure)
                self.progress.line(f"FAILED {failure}")
                continue
            summary.records += count
            summary.input_bytes += size
            self.progress.line(f"{key}: {count} records -> {target}")
        summary.seconds = clock.elapsed()
        return summary

    async def transform_object(self, path: Path, target: Path) -> tuple[int, int]:
        settings = self.job.settings
        source = InputObject(str(path), settings.compression_type == "Gzip")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        window: collections.deque[tuple[Request, asyncio.Task[bytes]]] = collections.deque()
        count = 0
        seen = 0
        try:
            with open(partial, "wb") as out:
                splitter = records_module.SPLITTERS[settings.split_type]
                separator = b"\n" if settings.split_type == "Line" else b""
                requests = records_module.pack(splitter(source.stream, self.job.max_payload),
                                               self._filter_input, self.job.multi_record, self.job.max_payload,
                                               separator)
                for request in _guard(requests):
                    if len(window) >= self.job.max_concurrent_transforms:
                        count += self._write(out, *await _oldest(window))
                        seen = self._advance(source, seen, 0)
                    window.append((request, asyncio.ensure_future(self._invoke(request))))
                    seen = self._advance(source, seen, 0)
                while window:
                    count += self._write(out, *await _oldest(window))
                self._advance(source, seen, 0)
            os.replace(partial, target)
            return count, source.position()
        except BaseException:
            for _, task in window:
                task.cancel()
            await asyncio.gather(*(task for _, task in window), return_exceptions=True)
            partial.unlink(missing_ok=True)
            raise
        finally:
            source.close()

    def _advance(self, source: InputObject, seen: int, records: int) -> int:
        """Move the bar by the input bytes read since ``seen``; returns the new position."""
        position = source.position()
        if position > seen:
            self.progress.advance(records, position - seen)
        return position

    def _filter_input(self, record: bytes) -> bytes:
        try:
            return self.processing.filter_input(record)
        except (DataProcessingError, JSONPathError) as exc:
            raise RecordFailed(f"input filter: {exc}") from None

    def _write(self, out: Any, request: Request, body: bytes) -> int:
        """Write one request's answer; returns the number of records it covered."""
        if self.job.per_record:
            try:
                outputs = split_output(body, len(request.records)) if self.job.multi_record else [body.rstrip(b"\n")]
                pieces = [self.processing.finish(record, output) for record, output in zip(request.records, outputs)]
            except (DataProcessingError, JSONPathError) as exc:
                raise RecordFailed(f"{request.label}: {exc}") from None
            if self.line_assembly:
                out.write(b"".join(piece + b"\n" for piece in pieces))
            else:
                out.write(b"".join(pieces))
        else:
            out.write(body)
            if self.line_assembly and not body.endswith(b"\n"):
                out.write(b"\n")
        self.progress.advance(len(request.records), 0)
        return len(request.records)

    async def _invoke(self, request: Request) -> bytes:
        import httpx

        settings = self.job.settings
        attempt = 0
        while True:
            try:
                response = await self.client.post(self.url + "/invocations", content=request.payload,
                                                  headers=self.headers, timeout=settings.invocation_timeout)
            except httpx.TransportError as exc:
                problem = f"{request.label}: the container did not answer ({type(exc).__name__}: {exc})"
            else:
                if response.status_code < 400:
                    return response.content
                message = response.content[:MAX_MESSAGE].decode("utf-8", "replace")
                problem = f"{request.label}: the container answered {response.status_code}: {message}"
                if response.status_code < 500:
                    raise RecordFailed(problem)
            attempt += 1
            if attempt > settings.max_retries:
                retried = f" (after {settings.max_retries} retries)" if settings.max_retries else ""
                raise RecordFailed(problem + retried)


async def _oldest(window: collections.deque[tuple[Request, asyncio.Task[bytes]]]) -> tuple[Request, bytes]:
    request, task = window.popleft()
    return request, await task


def _guard(requests: Any) -> Any:
    """Splitting errors (a record too large, broken framing) fail the object like a rejected record."""
    try:
        yield from requests
    except RecordError as exc:
        raise RecordFailed(str(exc)) from None
