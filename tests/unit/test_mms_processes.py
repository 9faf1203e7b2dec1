"""Finding the background server without psutil (sagemaker_inference.mms_compat.processes)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sagemaker_inference import model_server
from sagemaker_inference.mms_compat import processes

MARKED = [sys.executable, "-c", "import time; time.sleep(60)", processes.MMS_NAMESPACE]


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_pid_file_names_the_server_and_the_lookup_returns_it(own_tmp: Path) -> None:
    proc = subprocess.Popen(MARKED)
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
    proc = subprocess.Popen(MARKED)
    try:
        assert proc.pid in processes.scan()
    finally:
        proc.kill()
        proc.wait()
    assert processes.cmdline(proc.pid) == []
