from __future__ import annotations

import asyncio
import time

import pytest

from sagemaker_inference.local.runtime import errors
from sagemaker_inference.local.runtime.asyncjobs import AsyncJob, AsyncJobs, input_path
from sagemaker_inference.local.runtime.config import Variant


def test_a_job_past_its_ttl_is_not_run_and_fails(tmp_path):
    jobs = AsyncJobs(None, str(tmp_path), concurrency=1, queue_size=1)
    job = AsyncJob("id-1", Variant("AllTraffic", "http://127.0.0.1:9"), tmp_path / "in", {}, tmp_path / "x.out",
                   tmp_path / "failures" / "x-error.out", expires=time.monotonic() - 1, timeout=1)
    asyncio.run(jobs._execute(job))
    assert job.failure.read_bytes().startswith(b"Request expired")
    assert not job.output.exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_input_locations(tmp_path):
    source = tmp_path / "in put.json"
    source.write_text("{}")
    assert input_path(source.as_uri()) == source  # percent-encoded file:// URIs
    assert input_path(str(source)) == source
    for bad in ("s3://bucket/key", str(tmp_path), str(tmp_path / "missing")):
        with pytest.raises(errors.ValidationError):
            input_path(bad)
