"""The ``multi-model-server`` command: MMS 1.1.11's launcher, starting our server instead of a JVM.

Same flags and the same process shape as MMS: ``--start`` (or no flag) starts the server as a
background process, writes its pid to ``<tmp>/.model_server.pid`` and returns; ``--foreground``
keeps it in this process (the launcher becomes the server, same pid); ``--stop`` stops the server
the pid file names. The configuration is checked here first, so a bad file fails the command with
one line and exit code 1 instead of a server that dies later.

Unlike MMS, a stale pid file (its process gone, or not a server) is not mistaken for a running
server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping

from sagemaker_inference.mms_compat import detect, processes
from sagemaker_inference.mms_compat.properties import (
    Translation,
    effective_properties,
    parse_properties,
    server_config,
)
from sagemaker_inference.server.config import ConfigError

FRONTEND_MODULE = "sagemaker_inference.mms_compat.frontend"
STOP_WAIT_SECONDS = 30.0


def parser(prog: str = "multi-model-server") -> argparse.ArgumentParser:
    """MMS's ``ArgParser.mms_parser`` (``mms/arg_parser.py``), flag for flag."""
    parser = argparse.ArgumentParser(prog=prog, description="Multi Model Server (sagemaker-inference, no Java)")
    group = parser.add_mutually_exclusive_group(required=False)
    group.add_argument("--start", action="store_true", help="Start the model-server")
    group.add_argument("--stop", action="store_true", help="Stop the model-server")
    parser.add_argument("--mms-config", dest="mms_config", help="Configuration file for model server")
    parser.add_argument("--model-store", dest="model_store", help="Model store location where models can be loaded")
    parser.add_argument("--models", metavar="MODEL_PATH1 MODEL_NAME=MODEL_PATH2...", nargs="+",
                        help="Models to be loaded using [model_name=]model_location format.")
    parser.add_argument("--log-config", dest="log_config",
                        help="Log4j configuration file (accepted and checked; logging is ours, see "
                             "SAGEMAKER_CONTAINER_LOG_LEVEL)")
    parser.add_argument("--foreground", action="store_true",
                        help="Run the model server in foreground. If this option is disabled, the model server "
                             "will run in the background.")
    return parser


def load(args: argparse.Namespace, environ: Mapping[str, str]) -> Translation:
    """The checks MMS's launcher makes, then the configuration the server will run with."""
    if args.log_config and not os.path.isfile(os.path.realpath(args.log_config)):
        raise ConfigError(f"--log-config file not found: {os.path.realpath(args.log_config)}")
    if args.model_store and not os.path.isdir(args.model_store):
        raise ConfigError(f"--model-store directory not found: {args.model_store}")
    if args.models and not args.model_store and any(m != "ALL" and "://" not in m for m in args.models):
        raise ConfigError("--model-store is required to load model locally.")
    text = _config_text(environ.get("MMS_CONFIG_FILE") or args.mms_config)
    props = effective_properties(parse_properties(text), environ, model_store=args.model_store, models=args.models)
    return server_config(props, environ)


def _config_text(path: str | None) -> str:
    if path == "sagemaker":
        raise ConfigError("--mms-config sagemaker (MMS's bundled file) is not supported: pass the properties file")
    if path is None:
        path = "config.properties"  # MMS's default; a missing default file is an empty configuration
        if not os.path.isfile(path):
            return ""
    if not os.path.isfile(path):
        raise ConfigError(f"--mms-config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return f.read()


def frontend_argv(args: argparse.Namespace) -> list[str]:
    """The server's command line. ``--namespace`` puts MMS's class name in it for process lookups."""
    argv = [sys.executable, "-m", FRONTEND_MODULE]
    for flag, value in (("--mms-config", args.mms_config), ("--model-store", args.model_store),
                        ("--log-config", args.log_config)):
        if value:
            argv += [flag, value]
    if args.models:
        argv += ["--models", *args.models]
    return [*argv, "--namespace", processes.MMS_NAMESPACE]


def start(args: argparse.Namespace) -> int:
    detect.warn_if_conflict()
    running = processes.read_pid()
    if running is not None:
        if processes.is_server(running):
            print("Model server is already running, please use multi-model-server --stop to stop MMS.")
            return 1
        print("Removing orphan pid file.")
        processes.remove_pid_file()
    try:
        load(args, os.environ)
    except ConfigError as exc:
        print(f"multi-model-server: {exc}", file=sys.stderr)
        return 1
    argv = frontend_argv(args)
    sys.stdout.flush()
    if args.foreground:
        processes.write_pid(os.getpid())
        os.execv(sys.executable, argv)
    server = subprocess.Popen(argv)
    processes.write_pid(server.pid)
    return 0


def stop() -> int:
    """SIGTERM the server (it drains and stops its workers), SIGKILL what is left after a while."""
    pid = processes.read_pid()
    if pid is None:
        print("Model server is not currently running.")
        return 0
    if not processes.is_server(pid):
        print("Model server already stopped.")
        processes.remove_pid_file()
        return 0
    server = processes.ServerProcess(pid)
    children = _children(pid)
    server.terminate()
    try:
        server.wait(STOP_WAIT_SECONDS)
    except TimeoutError:
        for child in children:
            processes.ServerProcess(child).kill()
        server.kill()
    processes.remove_pid_file()
    print("Model server stopped.")
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return stop() if args.stop else start(args)


def old_main() -> int:
    """``mxnet-model-server``: MMS's old name for the same command."""
    print("Warning: Calling MMS with mxnet-model-server. Please move to multi-model-server.")
    return main()

