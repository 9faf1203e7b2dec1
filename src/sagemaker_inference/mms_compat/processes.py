"""Finding the server ``multi-model-server --start`` left running in the background.

MMS's launcher starts the JVM, writes its pid to ``<tmp>/.model_server.pid`` and exits; the
toolkits then look for a process whose command line contains the element
``com.amazonaws.ml.mms.ModelServer`` and wait on it. Our launcher does the same with our server,
whose command line carries that element too (``--namespace com.amazonaws.ml.mms.ModelServer``),
so a copy of the toolkit's lookup that scans processes finds it as well as ours, which reads the
pid file first. Nothing here needs ``psutil``: containers that drop the ``multi-model-server``
distribution may lose it (it came in as MMS's dependency); ``/proc`` is read instead.
"""

from __future__ import annotations

import errno
import os
import signal
import tempfile
import time

MMS_NAMESPACE = "com.amazonaws.ml.mms.ModelServer"
PID_FILE_NAME = ".model_server.pid"
_POLL = 0.05


def pid_file() -> str:
    """Where MMS keeps the server's pid: the temp directory (``TMPDIR`` moves it, as for MMS)."""
    return os.path.join(tempfile.gettempdir(), PID_FILE_NAME)


def read_pid() -> int | None:
    try:
        with open(pid_file()) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def write_pid(pid: int) -> None:
    with open(pid_file(), "w") as f:
        f.write(str(pid))


def remove_pid_file() -> None:
    try:
        os.remove(pid_file())
    except OSError:
        pass


def cmdline(pid: int) -> list[str]:
    """The process's argv, or [] when it is gone, a zombie, or not ours to read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rpartition(b")")[2].split()[:1] == [b"Z"]:
                return []
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0")[:-1]]


def is_server(pid: int) -> bool:
    """A live, non-zombie process that is an MMS-compatible server (ours or the JVM)."""
    return MMS_NAMESPACE in cmdline(pid)


def scan() -> list[int]:
    """Every server process on the machine, as the toolkit's lookup sees them (``/proc``)."""
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    return [pid for pid in pids if is_server(pid)]


class ServerProcess:
    """The part of ``psutil.Process`` the toolkits use on the server: ``pid``, ``wait()``,
    ``is_running()``, ``terminate()``, ``kill()``; for when ``psutil`` is not installed."""

    def __init__(self, pid: int):
        self.pid = pid

    def is_running(self) -> bool:
        self._reap()
        return _exists(self.pid) and not _is_zombie(self.pid)

    def wait(self, timeout: float | None = None) -> int | None:
        """Until the process has gone; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_running():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"process {self.pid} still running after {timeout} s")
            time.sleep(_POLL)
        return None

    def terminate(self) -> None:
        _signal(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        _signal(self.pid, signal.SIGKILL)

    def cmdline(self) -> list[str]:
        return cmdline(self.pid)

    def _reap(self) -> None:
        """When the server is our child (we are PID 1, or a subreaper), collect its exit status."""
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def __repr__(self) -> str:
        return f"ServerProcess(pid={self.pid})"


def process(pid: int) -> object:
    """``psutil.Process(pid)`` when psutil is installed (what upstream returned), else ours."""
    try:
        import psutil
    except ImportError:
        return ServerProcess(pid)
    return psutil.Process(pid)


def same_session(pid: int) -> bool:
    """Whether ``pid`` is in this process's session (a launcher we ran, and what it started, are)."""
    try:
        return os.getsid(pid) == os.getsid(0)
    except OSError:
        return False


def started_server() -> int | None:
    """The pid from the pid file, if that process is a live server."""
    pid = read_pid()
    return pid if pid is not None and is_server(pid) else None


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
