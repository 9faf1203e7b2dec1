"""SIGTERM and SIGINT from the entrypoint's first line until the event loop takes them over.

As PID 1 (a container's entrypoint) the kernel drops every signal the process has no handler
for, and until the server's event loop starts there is none: a SIGTERM during a requirements
install was lost, the container went on to serve, and SageMaker's one SIGTERM became a SIGKILL.
So the entrypoints call ``install()`` first. The handler only records the signal and stops the
child we are waiting for (pip), if any; the startup code checks ``received()`` at each step and
stops there, and the supervisor checks it once its own handlers are in place.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any

_received: int | None = None
_child: subprocess.Popen[bytes] | None = None


def install() -> None:
    """Record SIGTERM/SIGINT from now on (main thread only; elsewhere signals cannot be caught)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _record)


def received() -> int | None:
    """The first stop signal recorded since ``install()``, or None."""
    return _received


def _record(signum: int, frame: Any) -> None:
    global _received
    _received = _received or signum
    child = _child
    if child is not None and child.poll() is None:
        _signal_group(child, signal.SIGTERM)


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> int:
    """Run ``argv`` in its own process group and return its exit status. A stop signal ends it
    (its whole group: pip's build subprocesses too); so does ``timeout`` (``TimeoutExpired``)."""
    global _child
    child = subprocess.Popen(list(argv), env=dict(env), start_new_session=True)
    _child = child
    try:
        if _received is not None:  # arrived between the last check and the start
            _signal_group(child, signal.SIGTERM)
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGTERM)
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait()
            raise
    finally:
        _child = None
