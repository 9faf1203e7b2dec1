"""Finding the background server without psutil (sagemaker_inference.mms_compat.processes)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sagemaker_inference import model_server
from sagemaker_inference.mms_compat import processes

MARKED = [sys.executable, "-c", "import time; time.sleep(60)", processes.MMS_NAMESPACE]


def start_marked() -> subprocess.Popen[bytes]:
    """A marked process, returned once it has exec'd: until then /proc shows the parent's command line,
    and a scan on a busy machine would miss it."""
    proc = subprocess.Popen(MARKED)
    deadline = time.monotonic() + 30
    while processes.MMS_NAMESPACE not in processes.cmdline(proc.pid):
        assert time.monotonic() < deadline, "the marked process did not start"
        time.sleep(0.01)
    return proc


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_pid_file_names_the_server_and_the_lookup_returns_it(own_tmp: Path) -> None:
    proc = start_marked()
    try:
        processes.write_pid(proc.pid)
        assert (own_tmp / ".model_server.pid").read_text() == str(proc.pid)
        assert processes.started_server() == proc.pid
        assert model_server._retrieve_mms_server_process().pid == proc.pid
        server = processes.ServerProcess(proc.pid)
        assert server.is_running() and processes.MMS_NAMESPACE in server.cmdline()
        with pytest.raises(TimeoutError):
            server.wait(0.1)
        server.terminate()
        assert server.wait(30) is None and not server.is_running()
    finally:
        proc.kill()
        proc.wait()


def test_a_pid_file_naming_another_process_is_not_a_server(own_tmp: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        processes.write_pid(proc.pid)
        assert processes.started_server() is None
        assert proc.pid not in processes.scan()
    finally:
        proc.kill()
        proc.wait()


def test_scan_finds_marked_processes() -> None:
    proc = start_marked()
    try:
        assert proc.pid in processes.scan()
    finally:
        proc.kill()
        proc.wait()
    assert processes.cmdline(proc.pid) == []


SESSION_CHECK = f"""
import subprocess, sys, tempfile, time
tempfile.tempdir = sys.argv[1]  # an empty temp dir: no pid file, so the scan decides
from sagemaker_inference import model_server
from sagemaker_inference.mms_compat import processes
marked = {MARKED!r}
other = subprocess.Popen(marked, start_new_session=True)
ours = subprocess.Popen(marked)
deadline = time.monotonic() + 30
while not all(processes.is_server(p.pid) for p in (other, ours)):  # both exec'd
    assert time.monotonic() < deadline
    time.sleep(0.01)
try:
    assert not processes.same_session(other.pid) and processes.same_session(ours.pid)
    assert [p.pid for p in model_server._scan_mms_server_processes()] == [ours.pid]
    assert model_server._retrieve_mms_server_process().pid == ours.pid
    print("ok")
finally:
    for proc in (other, ours):
        proc.kill()
        proc.wait()
"""


def test_the_scan_ignores_servers_of_other_sessions(tmp_path: Path) -> None:
    """Without a pid file, a server started in another session (another container's, on a shared
    machine) is neither found nor waited on; one in our session is. Run as its own session leader,
    so servers other tests on this machine start cannot take part."""
    result = subprocess.run([sys.executable, "-c", SESSION_CHECK, str(tmp_path)], capture_output=True, text=True,
                            timeout=60, start_new_session=True)
    assert result.stdout.strip() == "ok", result.stderr
