"""``check --serve MODEL_DIR``: the kit starts the server itself, so it can signal it, kill its workers and time
its start.

The server is started as SageMaker starts a container, with ``SAGEMAKER_BIND_TO_PORT`` and a base directory
shaped like ``/opt/ml`` (``model/`` is a copy of MODEL_DIR; ``models/`` the root of a multi-model server), in a
new session with a run token in its environment. Its processes are those of that session or carrying the token
(a server that daemonizes, as MMS does, keeps both), found in ``/proc``: Linux only.

The default command is our server; ``--serve-command`` runs any other, with ``{port}``, ``{model_dir}``,
``{base_dir}`` and ``{python}`` replaced.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sagemaker_inference.conformance import wire
from sagemaker_inference.conformance.procfs import command_line, has_env_token, stat_fields

RUN_TOKEN = "SAGEMAKER_CONFORMANCE_RUN"
DEFAULT_COMMAND = "{python} -m sagemaker_inference serve --host 127.0.0.1 --port {port} --model-dir {model_dir}"
DEFAULT_MME_COMMAND = "{python} -m sagemaker_inference serve --host 127.0.0.1 --port {port} --multi-model " \
                      "--model-root {base_dir}/models"


def free_port() -> int:
    """A free port below 32768: MMS 1.1.11 refuses higher ones ("Invalid port number"), where the kernel's
    ephemeral range (what binding port 0 gives) usually lies."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port between 20000 and 32000")


class ServedServer:
    def __init__(self, model_dir: str, command: str | None, workers: int, multi_model: bool,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="sagemaker-conformance-"))
        self.base_dir = self.workdir / "ml"
        self.model_source = Path(model_dir).resolve()
        shutil.copytree(self.model_source, self.base_dir / "model", symlinks=True)
        (self.base_dir / "models").mkdir()
        (self.workdir / "tmp").mkdir()  # the server's TMPDIR: where an archive that escapes would land
        self.multi_model = multi_model
        template = command or (DEFAULT_MME_COMMAND if multi_model else DEFAULT_COMMAND)
        self.argv = [part.format(port=self.port, model_dir=self.base_dir / "model", base_dir=self.base_dir,
                                 python=sys.executable) for part in shlex.split(template)]
        self.token = uuid.uuid4().hex
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MMS_"))}
        self.env.update({"SAGEMAKER_BIND_TO_PORT": str(self.port), "SAGEMAKER_BASE_DIR": str(self.base_dir),
                         "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers), RUN_TOKEN: self.token,
                         "PYTHONUNBUFFERED": "1", "TMPDIR": str(self.workdir / "tmp"), **(env or {})})
        if multi_model:
            self.env["SAGEMAKER_MULTI_MODEL"] = "true"
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float) -> None:
        """Start and wait until ``/ping`` answers 200; ``startup_seconds`` is how long that took."""
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.workdir, start_new_session=True)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode} before it was ready:\n"
                                   f"{self.log_tail()}")
            if self.ping() == 200:
                self.startup_seconds = time.monotonic() - started
                return
            time.sleep(0.05)
        raise RuntimeError(f"the server was not ready (/ping 200) within {timeout:.0f} s:\n{self.log_tail()}")

    def ping(self, timeout: float = 2.0) -> int:
        try:
            return wire.exchange("127.0.0.1", self.port, wire.request("GET", "/ping"), timeout).status
        except (wire.NoResponse, OSError):
            return 0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- the process tree --------------------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Live processes of the server (same session as the root, or carrying the run token), root first."""
        assert self.proc is not None
        found = []
        token = f"{RUN_TOKEN}={self.token}".encode()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            stat = stat_fields(int(name))
            if stat is None or stat[0] == "Z":
                continue
            if int(stat[3]) == self.proc.pid or has_env_token(int(name), token):
                found.append(int(name))
        return sorted(found, key=lambda pid: (pid != self.proc.pid if self.proc else True, pid))

    def workers(self) -> list[int]:
        """Python processes of the tree that have no children: the model workers, for ours and for MMS."""
        pids = self.pids()
        parents = {int(s[1]) for s in (stat_fields(p) for p in pids) if s}
        return [p for p in pids if p not in parents and p != (self.proc.pid if self.proc else -1)
                and "python" in command_line(p)]

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, ValueError, IndexError):
                pass
        return total

    def stop(self, keep_dir: bool = False) -> None:
        """Whatever is left: SIGTERM the root, then SIGKILL every process of the tree; remove the work dir
        (unless ``keep_dir``: the server's log is ``server.log`` in it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if self.proc.poll() is None:
                self.proc.wait(5)
        if not keep_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
