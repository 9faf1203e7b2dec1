"""How each stack is launched: the command, environment and working directory, given a model dir and a port.

MMS is started the way the toolkit starts it: a launcher run with the upstream venv's Python calls
``model_server.start_model_server()``, which writes /etc/sagemaker-mms.properties and runs ``multi-model-server
--start``; that daemonizes the JVM, which forks the Python workers. Ours is ``python -m sagemaker_inference serve``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import procs

UPSTREAM_PYTHON = "/work/upstream-venv/bin/python"
OURS_PYTHON = os.environ.get("BENCH_OURS_PYTHON", sys.executable)
# `before`: our server from an earlier tree, for before/after figures in one run (a venv with that tree installed).
BEFORE_PYTHON = os.environ.get("BENCH_BEFORE_PYTHON", "")
MMS_PID_FILE = Path("/tmp/.model_server.pid")
MMS_MARKER = "com.amazonaws.ml.mms.ModelServer"

_MMS_LAUNCHER = """\
from sagemaker_inference import model_server

model_server.start_model_server(handler_service=model_server.DEFAULT_HANDLER_SERVICE)
"""


@dataclass(frozen=True)
class Options:
    """What the benchmark asks of a stack; each stack maps it to its own knobs (or ignores what it lacks)."""

    base_dir: Path  # shaped like /opt/ml: model/ for one model, models/ for multi-model endpoints
    port: int
    workers: int = 2
    batch_size: int | None = None
    max_batch_delay_ms: int | None = None
    multi_model: bool = False
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def _base_env(options: Options, run_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(
        {
            procs.RUN_ID_VAR: run_id,
            "SAGEMAKER_BIND_TO_PORT": str(options.port),
            "SAGEMAKER_BASE_DIR": str(options.base_dir),
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(options.workers),
        }
    )
    if options.multi_model:
        env["SAGEMAKER_MULTI_MODEL"] = "true"
    return env


class Stack(Protocol):
    name: str
    batching: bool  # whether the batch settings reach the server

    def preflight(self) -> str | None:
        """Why the stack cannot run here, or None."""

    def launch(self, workdir: Path, options: Options, run_id: str) -> Launch: ...

    def cleanup(self) -> None:
        """Undo what the stack leaves behind after its processes are gone."""


class MMS:
    name = "mms"
    batching = False  # the toolkit starts MMS with --models, which takes no batch settings

    def preflight(self) -> str | None:
        if not Path(UPSTREAM_PYTHON).exists():
            return f"upstream venv not found: {UPSTREAM_PYTHON}"
        others = _pids_matching(MMS_MARKER)
        if others:
            return f"another MMS is running (pids {others}); the toolkit refuses to start a second one"
        return None

    def launch(self, workdir: Path, options: Options, run_id: str) -> Launch:
        script = workdir / "launch_mms.py"
        script.write_text(_MMS_LAUNCHER)
        env = _base_env(options, run_id)
        env["LOG_LOCATION"] = env["METRICS_LOCATION"] = str(workdir / "logs")
        # The toolkit runs `multi-model-server` from PATH, as in the upstream containers.
        env["PATH"] = f"{Path(UPSTREAM_PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
        if options.needs:
            env["PYTHONPATH"] = str(_extras_for_upstream(workdir))
        return Launch([UPSTREAM_PYTHON, str(script)], env, workdir)

    def cleanup(self) -> None:
        """Remove MMS's pid file when the process it names is gone, so the next start is not refused."""
        try:
            pid = int(MMS_PID_FILE.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if not procs.is_alive(pid):
            MMS_PID_FILE.unlink(missing_ok=True)


class Ours:
    name = "ours"
    batching = True

    def __init__(self, python: str = OURS_PYTHON, name: str = "ours", env: dict[str, str] | None = None) -> None:
        self.python, self.name, self.env = python, name, dict(env or {})

    def preflight(self) -> str | None:
        if not self.python:
            return "set BENCH_BEFORE_PYTHON to the Python of a venv holding the earlier tree"
        probe = subprocess.run(
            [self.python, "-m", "sagemaker_inference", "serve", "--help"], capture_output=True, text=True, timeout=60
        )
        if probe.returncode != 0:
            detail = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"`{self.python} -m sagemaker_inference serve --help` failed ({probe.returncode}): {detail[0]}"
        return None

    def launch(self, workdir: Path, options: Options, run_id: str) -> Launch:
        argv = [self.python, "-m", "sagemaker_inference", "serve", "--host", "127.0.0.1", "--port", str(options.port)]
        argv += ["--workers", str(options.workers)]
        if not options.multi_model:
            argv += ["--model-dir", str(options.base_dir / "model")]
        if options.batch_size is not None:
            argv += ["--batch-size", str(options.batch_size)]
        if options.max_batch_delay_ms is not None:
            argv += ["--max-batch-delay", str(options.max_batch_delay_ms)]
        return Launch(argv, {**_base_env(options, run_id), **self.env}, workdir)

    def cleanup(self) -> None:
        pass


def get(names: str) -> list[Stack]:
    known: dict[str, Stack] = {"ours": Ours(), "mms": MMS(), "before": Ours(BEFORE_PYTHON, "before"),
                               # the cost of observability: ours with the metrics switched off
                               "ours-nometrics": Ours(name="ours-nometrics", env={"SAGEMAKER_METRICS": "false"})}
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise SystemExit(f"unknown stack(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in chosen]


def _pids_matching(marker: str) -> list[int]:
    return [pid for pid in procs.live_pids() if marker in procs.command_line(pid)]


def _site_packages(python: str) -> Path:
    out = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _extras_for_upstream(workdir: Path) -> Path:
    """A directory for the MMS workers' PYTHONPATH holding symlinks to what our venv has and the upstream venv
    lacks (torch, scikit-learn and their dependencies), so upstream keeps its own numpy, psutil and toolkit."""
    ours, theirs = _site_packages(sys.executable), _site_packages(UPSTREAM_PYTHON)
    present = {p.name.lower() for p in theirs.iterdir()}
    extras = workdir / "upstream-extras"
    extras.mkdir(exist_ok=True)
    for entry in ours.iterdir():
        if entry.name.lower() not in present and not entry.name.endswith(".pth"):
            (extras / entry.name).symlink_to(entry)
    return extras
