"""Starting worker processes; light on imports on purpose.

The server spawns its first workers before it imports the rest of itself (asyncio, uvloop, the
HTTP layer), so a worker's interpreter start-up and its import of the handler (and of numpy,
torch, ... through the user's module) overlap the server's own start-up instead of following it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import NamedTuple

WORKER_FD = 3  # where the worker finds its socket


class Spawned(NamedTuple):
    """A started worker process and our end of its socket."""

    pid: int
    sock: socket.socket


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment workers run in: the server's, with user output unbuffered, so that print()
    reaches the server log when it happens, not when a buffer fills."""
    env = dict(environ)
    if not env.get("PYTHONUNBUFFERED"):
        env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn_worker(python: str, model_name: str, log_level: int, env: Mapping[str, str], *, handler: str = "",
                 model_dir: str = "", log_format: str = "text") -> Spawned:
    """Start ``python -m sagemaker_inference.server.workers.process`` with a socketpair end as fd 3.

    ``handler`` and ``model_dir`` let the worker import its handler while it waits for ``Load``.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        argv = [python, "-m", "sagemaker_inference.server.workers.process", "--fd", str(WORKER_FD),
                "--model-name", model_name, "--log-level", str(log_level)]
        if handler:
            argv += ["--preload", handler, "--model-dir", model_dir]
        if log_format != "text":
            argv += ["--log-format", log_format]
        pid = os.posix_spawn(python, argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, theirs.fileno(), WORKER_FD)])
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return Spawned(pid, ours)
