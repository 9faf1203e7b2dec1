"""``--model-dir``: our server started for the job with the environment SageMaker sets for batch transform
(``SAGEMAKER_BATCH=true`` and, when the job sets them, ``SAGEMAKER_MAX_PAYLOAD_IN_MB``,
``SAGEMAKER_BATCH_STRATEGY``, ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``), on a free loopback port, and stopped
(SIGTERM, then SIGKILL after a grace period) when the job ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sagemaker_inference.local.transform.config import JobSettings

READY_TIMEOUT = 300.0
_STRATEGY = {"SingleRecord": "SINGLE_RECORD", "MultiRecord": "MULTI_RECORD"}


class ContainerError(RuntimeError):
    """The server for the job did not start; the message carries the end of its log."""


def batch_environment(settings: JobSettings, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    env.update({"SAGEMAKER_BATCH": "true", "SAGEMAKER_BIND_TO_PORT": str(port)})
    if settings.max_payload_mb is not None:
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(settings.max_payload_mb)
    if settings.batch_strategy is not None:
        env["SAGEMAKER_BATCH_STRATEGY"] = _STRATEGY[settings.batch_strategy]
    if settings.max_concurrent_transforms is not None:
        env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(settings.max_concurrent_transforms)
    return env


class JobContainer:
    def __init__(self, model_dir: str, settings: JobSettings):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="transform-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sagemaker_inference", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--model-dir", model_dir], env=batch_environment(settings, self.port), stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ContainerError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/ping", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise ContainerError(f"the server was not ready within {timeout:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        os.unlink(self._log.name)
