"""A stack under test as a subprocess: spawn it in its own session, wait for its first 200, find its whole process
tree, and stop every process of it at the end (including MMS's daemonized JVM and orphaned Python workers)."""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import procs
from stacks import Launch


class StartupError(RuntimeError):
    """The server exited or never answered 200 before the deadline."""


@dataclass(frozen=True)
class Probe:
    """The request whose first 200 marks the server ready."""

    method: str = "POST"
    path: str = "/invocations"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    """A free port below 32768: MMS rejects anything above a signed short ("Invalid port number")."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found in 20000-32000")


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> int:
    """Send one request on a fresh connection; return the status, or 0 when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


class Server:
    def __init__(self, name: str, launch: Launch, port: int, run_id: str) -> None:
        self.name = name
        self.launch = launch
        self.port = port
        self.run_id = run_id  # also in launch.env, see procs.tree_pids
        self.log_path = launch.cwd / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.started_at = time.perf_counter()
            self.process = subprocess.Popen(
                self.launch.argv,
                env=self.launch.env,
                cwd=self.launch.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, probe: Probe, timeout: float = 120.0) -> float:
        """Poll until ``probe`` gets a 200; return seconds from spawn to that 200."""
        deadline = self.started_at + timeout
        while time.perf_counter() < deadline:
            if request(self.port, probe.method, probe.path, probe.body, probe.headers) == 200:
                return time.perf_counter() - self.started_at
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise StartupError(f"{self.name} exited with code {code} before answering 200\n{self.log_tail()}")
            time.sleep(0.01)
        what = f"{probe.method} {probe.path}"
        raise StartupError(f"{self.name}: no 200 on {what} within {timeout:g} s\n{self.log_tail()}")

    def exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def pids(self) -> list[int]:
        if self.process is None:
            return []
        return procs.tree_pids(self.process.pid, self.run_id)

    def stop(self, grace: float = 15.0) -> list[int]:
        """SIGTERM the root (MMS's launcher forwards it to the JVM) and wait for it; then SIGTERM, and after a short
        wait SIGKILL, whatever of the tree outlived it. Returns the pids that outlived the root."""
        if self.process is None:
            return []
        _signal(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        leftovers = self.pids()
        for signo, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            for pid in self.pids():
                _signal(pid, signo)
            _wait_until(lambda: not self.pids(), wait)
        self.process.wait(timeout=5)
        return leftovers

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])


def _wait_until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal(pid: int, signo: int) -> None:
    try:
        os.kill(pid, signo)
    except ProcessLookupError:
        pass
