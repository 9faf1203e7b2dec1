"""The container's start-up before the server listens, against the real entrypoint: environment
variables read by the toolkit and the server alike, the requirements install (SIGTERM during it as
PID 1, its time limit, CodeArtifact's token, the enforced index, the server's own packages), and
commands run instead of ``serve``.

pip runs for real against indexes on 127.0.0.1 that the tests control (one that never answers, a
fake CodeArtifact API), so nothing is downloaded and nothing is installed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import ECHO_MODEL
from tests.e2e.serverproc import ServerProcess, write_model
from tests.e2e.test_container_entrypoint import _children, _entrypoint, unshare  # noqa: F401 (fixture)

DEADLINE = 60.0


def _opt_ml(tmp_path: Path, requirements: str | None = None) -> Path:
    base = tmp_path / "opt" / "ml"
    files = {"code/requirements.txt": requirements} if requirements is not None else {}
    write_model(base / "model", ECHO_MODEL, **files)
    return base


def _env(base: Path, **extra: str) -> dict[str, str]:
    # pip sees only what the test gives it: no config files, no local wheel directory.
    return {"SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "PIP_CONFIG_FILE": os.devnull,
            "PIP_FIND_LINKS": "", "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


class SilentIndex:
    """A TCP port that accepts pip's connections and never answers; ``connected`` once pip is
    waiting on it. ``on_connect`` runs (in its thread) when pip connects."""

    def __init__(self, on_connect=lambda: None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self._held: list[socket.socket] = []
        self._on_connect = on_connect
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)
            self._on_connect()
            self.connected.set()

    def close(self) -> None:
        for conn in self._held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_index() -> Iterator[SilentIndex]:
    index = SilentIndex()
    yield index
    index.close()


# -- one parser for every reader of the environment -----------------------------------------------


def test_fractional_and_empty_timeouts_serve_through_the_toolkit(serve, tmp_path):
    # ServerConfig took these, the toolkit's Environment() (the entrypoint, every worker) did not.
    env = _env(_opt_ml(tmp_path), SAGEMAKER_STARTUP_TIMEOUT="600.0", SAGEMAKER_MODEL_SERVER_TIMEOUT="30.0",
               SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS="")
    server = serve(argv=[_entrypoint(), "serve"], env=env)
    assert server.client.post("/invocations", json={"a": 1}).json() == {"a": 1}


@pytest.mark.parametrize(("name", "value"), [("SAGEMAKER_MODEL_SERVER_TIMEOUT", "soon"),
                                             ("SAGEMAKER_STARTUP_TIMEOUT", "nan"),
                                             ("SAGEMAKER_CONTAINER_LOG_LEVEL", "²")])
def test_a_bad_value_is_one_line_naming_the_variable(tmp_path, name, value):
    env = {**os.environ, **_env(_opt_ml(tmp_path)), name: value}
    result = subprocess.run([_entrypoint(), "serve"], env=env, capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{name}={value!r}" in result.stderr


# -- the requirements install -------------------------------------------------------------------


def test_sigterm_during_the_install_as_pid_1_stops_the_start(unshare, tmp_path, silent_index):  # noqa: F811
    base = _opt_ml(tmp_path, "surely-not-a-real-package-h16b==1.0\n")
    env = _env(base, PIP_INDEX_URL=f"http://127.0.0.1:{silent_index.port}/simple", PIP_DEFAULT_TIMEOUT="600")
    server = ServerProcess([], env=env, argv=[unshare, "--pid", "--fork", "--kill-child", _entrypoint()])
    try:
        assert silent_index.connected.wait(DEADLINE), server.log  # pip is installing
        init = next(iter(_children(server.proc.pid)))
        os.kill(init, signal.SIGTERM)  # PID 1 gets only the signals it has a handler for
        assert server.wait_exit(DEADLINE) == 0, server.log
        assert "stopped during startup" in server.log
        assert "listening" not in server.log and "ready on" not in server.log
    finally:
        server.stop()


def test_the_install_has_a_time_limit(serve, tmp_path, silent_index):
    base = _opt_ml(tmp_path, "surely-not-a-real-package-h16b==1.0\n")
    env = _env(base, PIP_INDEX_URL=f"http://127.0.0.1:{silent_index.port}/simple", PIP_DEFAULT_TIMEOUT="600",
               SAGEMAKER_REQUIREMENTS_TIMEOUT="3")
    server = serve(argv=[_entrypoint(), "serve"], env=env, ready=False)
    assert server.wait_exit(DEADLINE) != 0
    assert "longer than 3 s (SAGEMAKER_REQUIREMENTS_TIMEOUT)" in server.log


def test_the_install_cannot_replace_the_servers_own_packages(serve, tmp_path):
    from importlib.metadata import version

    installed = version("httptools")
    other = "0.8.0" if installed != "0.8.0" else "0.7.1"
    # A dry run resolves for real and installs nothing: without the server's pins it would
    # "install" httptools==<other> and start.
    env = {**_env(_opt_ml(tmp_path, f"httptools=={other}\n")), "PIP_DRY_RUN": "1"}
    env.pop("PIP_CONFIG_FILE")
    env.pop("PIP_FIND_LINKS")
    server = serve(argv=[_entrypoint(), "serve"], env=env, ready=False)
    assert server.wait_exit(DEADLINE * 3) != 0, server.log
    assert "failed to install required packages" in server.log
    assert version("httptools") == installed


# -- CodeArtifact ---------------------------------------------------------------------------------

TOKEN = "h16b-secret-token-value-0123456789"


class FakeCodeArtifact(BaseHTTPRequestHandler):
    """The two CodeArtifact calls the toolkit makes (REST-JSON), answered for any account."""

    index_url = ""

    def do_POST(self) -> None:  # GetAuthorizationToken
        self._json({"authorizationToken": TOKEN, "expiration": 4102444800})

    def do_GET(self) -> None:  # GetRepositoryEndpoint
        self._json({"repositoryEndpoint": self.index_url})

    def _json(self, payload: dict) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _command_lines_with(text: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.fixture
def codeartifact() -> Iterator[tuple[dict[str, str], list[list[str]]]]:
    """A fake CodeArtifact API and a pip index behind it that records the command lines visible
    while pip talks to it; yields the environment that points the toolkit there."""
    seen: list[list[str]] = []
    index = SilentIndex(on_connect=lambda: seen.append(_command_lines_with(TOKEN)))
    handler = type("Handler", (FakeCodeArtifact,), {"index_url": f"https://127.0.0.1:{index.port}/pypi/repo/"})
    api = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {"CA_REPOSITORY_ARN": "arn:aws:codeartifact:us-east-1:123456789012:repository/dom/repo",
           "AWS_ENDPOINT_URL_CODEARTIFACT": f"http://127.0.0.1:{api.server_address[1]}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "PIP_DEFAULT_TIMEOUT": "5", "PIP_RETRIES": "0", "SAGEMAKER_REQUIREMENTS_TIMEOUT": "20"}
    yield env, seen
    api.shutdown()
    api.server_close()
    index.close()


def test_the_codeartifact_token_is_in_no_log_and_no_command_line(serve, tmp_path, codeartifact):
    pytest.importorskip("boto3")
    env, seen = codeartifact
    base = _opt_ml(tmp_path, "surely-not-a-real-package-h16b\n")
    server = serve(argv=[_entrypoint(), "serve"], env={**_env(base), **env}, ready=False)
    assert server.wait_exit(DEADLINE) != 0
    assert seen, f"pip never reached the CodeArtifact index:\n{server.log}"
    assert seen == [[]] * len(seen), seen  # no process had the token on its command line
    assert TOKEN not in server.log
    assert "failed to install required packages" in server.log


@pytest.mark.parametrize("line", ["--extra-index-url http://127.0.0.1:9/simple", "-i http://127.0.0.1:9/simple",
                                  "--find-links /tmp", "-e git+https://example.invalid/x.git",
                                  "pkg @ https://example.invalid/pkg.whl"])
def test_an_enforced_index_refuses_lines_that_change_where_packages_come_from(serve, tmp_path, codeartifact, line):
    pytest.importorskip("boto3")
    env, seen = codeartifact
    server = serve(argv=[_entrypoint(), "serve"], env={**_env(_opt_ml(tmp_path, f"six\n{line}\n")), **env},
                   ready=False)
    assert server.wait_exit(DEADLINE) != 0
    assert "changes where packages come from" in server.log and "line 2" in server.log
    assert not seen  # pip never ran


# -- commands instead of serve --------------------------------------------------------------------


def test_commands_get_default_sigpipe_and_sigxfsz():
    result = subprocess.run([_entrypoint(), "bash", "-c", "yes | head -1; echo status=${PIPESTATUS[0]}; "
                             "grep SigIgn /proc/self/status"], capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    assert "status=141" in result.stdout  # yes was ended by SIGPIPE
    assert "Broken pipe" not in result.stderr
    ignored = int(result.stdout.split("SigIgn:")[1].split()[0], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1))


def test_startup_info_lines_appear(serve, tmp_path, silent_index):
    base = _opt_ml(tmp_path, "surely-not-a-real-package-h16b==1.0\n")
    env = _env(base, PIP_INDEX_URL=f"http://127.0.0.1:{silent_index.port}/simple", PIP_DEFAULT_TIMEOUT="600",
               SAGEMAKER_REQUIREMENTS_TIMEOUT="2")
    server = serve(argv=[_entrypoint(), "serve"], env=env, ready=False)
    server.wait_exit(DEADLINE)
    assert "installing packages from requirements.txt" in server.log
    assert server.log.count("installing packages from requirements.txt") == 1  # one handler, not two

