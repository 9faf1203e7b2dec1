"""Start the real server as a subprocess on a free loopback port, for end-to-end tests.

Ready means ``/ping`` answered 200 before a deadline (never a sleep or a log line). Logs go to a
file so a failing test can show them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx

READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_model(model_dir: Path, inference_py: str, **files: str) -> Path:
    """A model dir with ``code/inference.py`` (dedented) and any extra files (name -> text)."""
    code = model_dir / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "inference.py").write_text(textwrap.dedent(inference_py))
    for name, text in files.items():
        path = model_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return model_dir


class ServerProcess:
    """``python -m sagemaker_inference serve`` (or any argv) bound to 127.0.0.1:<free port>."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, argv: list[str] | None = None,
                 cwd: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MMS_", "TS_"))}
        self.env = {**inherited, "SAGEMAKER_BIND_TO_PORT": str(self.port), "PYTHONUNBUFFERED": "1", **(env or {})}
        self._log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)
        command = argv or [sys.executable, "-m", "sagemaker_inference", "serve", "--host", "127.0.0.1",
                           "--port", str(self.port), *args]
        self.proc = subprocess.Popen(command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd,
                                     start_new_session=True)
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    @property
    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def wait_listening(self, timeout: float = READY_TIMEOUT) -> None:
        """Until ``/ping`` answers at all (503 while the model loads is fine)."""
        self._wait_for_ping(lambda status: True, timeout, "listen")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        """Until ``/ping`` answers 200."""
        self._wait_for_ping(lambda status: status == 200, timeout, "be ready")
        return self

    def _wait_for_ping(self, done: Callable[[int], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                if done(self.client.get("/ping", timeout=1.0).status_code):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"server did not {what} within {timeout} s:\n{self.log}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server and wait; anything left in its process group is killed."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes (children of the server)."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
