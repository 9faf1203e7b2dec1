"""The emulator (``sagemaker-inference runtime``) and the chunked test container as subprocesses on free
loopback ports, and a boto3 client pointed at the emulator exactly as a user points one at AWS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.serverproc import READY_TIMEOUT, free_port

CHUNKED_CONTAINER = Path(__file__).with_name("chunked_container.py")


class Process:
    """A command given ``{port}`` in its argv; ready when ``GET /ping`` answers 200."""

    def __init__(self, argv: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="proc-", suffix=".log", delete=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "AWS_"))}
        self.proc = subprocess.Popen([a.format(port=self.port) for a in argv], stdout=self._log,
                                     stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"},
                                     start_new_session=True)

    @property
    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args} exited with {self.proc.returncode}:\n{self.log}")
            try:
                if httpx.get(self.url + "/ping", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"{self.proc.args} not ready within {timeout} s:\n{self.log}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def emulator(*args: str) -> Process:
    return Process([sys.executable, "-m", "sagemaker_inference", "runtime", "--port", "{port}", *args]).wait_ready()


def chunked_container() -> Process:
    return Process([sys.executable, str(CHUNKED_CONTAINER), "{port}"]).wait_ready()


def runtime_client(url: str, read_timeout: float = 30.0) -> Any:
    """``boto3.client("sagemaker-runtime", endpoint_url=...)`` with dummy credentials and no retries."""
    import boto3
    from botocore.config import Config

    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=read_timeout,
                                      connect_timeout=5))
