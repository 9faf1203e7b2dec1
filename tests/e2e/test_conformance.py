"""The conformance kit against real servers: the quick mode on ours (what CI runs), the process checks with
``--serve``, and a deliberately broken stdlib server, to show the kit detects what it claims to.

Every check must pass. A check that fails on main because the fix for its issue has not landed yet may be listed
in ``KNOWN_FAILING`` with the issue (never by weakening the check), and removed when the fix lands.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sagemaker_inference.server.cli import EXAMPLE_MODEL_DIR
from tests.e2e.serverproc import ServerProcess

# name -> the issue whose fix it waits for; empty since issue 16's HTTP fixes (half-close, SIGTERM drain) landed.
KNOWN_FAILING: dict[str, str] = {}


def kit_json(tmp_path: Path, *args: str, timeout: float = 240.0) -> tuple[int, dict, str]:
    report = tmp_path / "report.json"
    completed = subprocess.run([sys.executable, "-m", "sagemaker_inference", "check", *args, "--json", str(report)],
                               capture_output=True, text=True, timeout=timeout)
    output = completed.stdout + completed.stderr
    assert report.exists(), output
    return completed.returncode, json.loads(report.read_text()), output


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict, str]]:
    server = ServerProcess(["--workers", "2", "--example"])
    try:
        server.wait_ready()
        yield kit_json(tmp_path_factory.mktemp("kit"), server.url, "--quick", timeout=120.0)
    finally:
        server.stop()


def failures(report: dict) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in report["checks"] if not c["passed"]}


def test_quick_mode_on_our_server(quick_report):
    code, report, output = quick_report
    assert report["mode"] == "quick"
    assert len(report["checks"]) >= 20
    assert {"name", "passed", "detail"} <= set(report["checks"][0])
    unexpected = {n: d for n, d in failures(report).items() if n not in KNOWN_FAILING}
    assert not unexpected, output
    assert code == (1 if failures(report) else 0), output
    assert report["seconds"] < 60


@pytest.mark.slow
def test_serve_mode_process_checks_on_our_server(tmp_path):
    code, report, output = kit_json(tmp_path, "--serve", EXAMPLE_MODEL_DIR, "--quick", "--only", "process.,ping",
                                    timeout=240.0)
    names = {c["name"] for c in report["checks"]}
    assert {"process.startup", "process.kill-worker", "process.sigterm-drain", "process.sigterm-exit",
            "process.nothing-left-behind", "ping"} <= names, output
    unexpected = {n: d for n, d in failures(report).items() if n not in KNOWN_FAILING}
    assert not unexpected, output
    assert code == (1 if failures(report) else 0), output


class BrokenHandler(BaseHTTPRequestHandler):
    """A server that follows the contract except that a malformed JSON body gets 500, as upstream's toolkit does."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/ping" else 404, b"{}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            return self._answer(404, b"{}")
        if self.headers.get("Content-Type") != "application/json":
            return self._answer(415, b'{"message": "unsupported"}')
        try:
            json.loads(body)
        except ValueError as exc:
            return self._answer(500, json.dumps({"message": str(exc)}).encode())
        self._answer(200, body)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the kit's probes hang up mid-answer on purpose: no traceback in the test output


@pytest.fixture
def broken_server() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), BrokenHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_kit_detects_a_server_answering_500_to_malformed_json(tmp_path, broken_server):
    code, report, output = kit_json(tmp_path, broken_server, "--quick", "--only",
                                    "ping,payload.malformed-json,payload.unsupported-content-type", timeout=120.0)
    results = {c["name"]: c for c in report["checks"]}
    assert code == 1, output
    assert results["ping"]["passed"], output
    assert results["payload.unsupported-content-type"]["passed"], output
    assert not results["payload.malformed-json"]["passed"], output
    assert results["payload.malformed-json"]["figure"] == 500
    assert "500" in results["payload.malformed-json"]["detail"]
    assert "payload.malformed-json" in output and "FAIL" in output  # the table for people says so too
