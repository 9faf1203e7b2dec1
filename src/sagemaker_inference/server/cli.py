"""``sagemaker-inference serve``: flags -> ``ServerConfig`` -> ``supervisor.run``.

Every flag has an environment variable (shown in ``--help``); the flag wins when both are set.
"""

from __future__ import annotations

import argparse
import os
import sys

from sagemaker_inference.conformance import cli as conformance_cli
from sagemaker_inference.local import commands as local_commands
from sagemaker_inference.server.config import ConfigError, ServerConfig, megabytes, parse_log_level

EXAMPLE_MODEL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example_model")

DESCRIPTION = """\
Serve a model with the SageMaker hosting contract (/ping, /invocations, /execution-parameters,
and /models in multi-model mode), without Java.

The model directory holds your model files and code/inference.py with model_fn, and optionally
input_fn, predict_fn, output_fn or transform_fn. Try it with the bundled example:

  sagemaker-inference serve --example --port 8080
  curl -s -X POST localhost:8080/invocations -H 'Content-Type: application/json' -d '[[1, 2, 3, 4]]'
"""


def _version() -> str:
    import platform

    import sagemaker_inference

    return f"sagemaker-inference {sagemaker_inference.__version__} (Python {platform.python_version()})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagemaker-inference", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="start the model server (default command)",
                                description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = serve.add_argument
    add("--host", help="address to bind (default 0.0.0.0)")
    add("--port", type=int, help="port to listen on [SAGEMAKER_BIND_TO_PORT, default 8080]")
    add("--model-dir", help="model directory [default $SAGEMAKER_BASE_DIR/model, i.e. /opt/ml/model]")
    add("--example", action="store_true", help="serve the bundled example model (a tiny linear model)")
    add("--handler", help="handler service: module, module:function or path/to/file.py:function "
                          "[SAGEMAKER_HANDLER, default sagemaker_inference.default_handler_service]")
    add("--workers", type=int, help="worker processes per model [SAGEMAKER_MODEL_SERVER_WORKERS, default: usable CPUs]")
    add("--timeout", type=float, help="seconds a request may run before it gets 504 and its worker is replaced "
                                      "[SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS or SAGEMAKER_MODEL_SERVER_TIMEOUT, "
                                      "default 60]")
    add("--max-payload-mb", type=float, help="largest request body in MB, fractions allowed "
                                             "[SAGEMAKER_MAX_PAYLOAD_IN_MB, default 6553500 bytes]")
    add("--batch-size", type=int, help="requests per handler call [SAGEMAKER_TS_BATCH_SIZE, default 1: no batching]")
    add("--max-batch-delay", type=float, help="ms to wait for a batch to fill [SAGEMAKER_TS_MAX_BATCH_DELAY, "
                                              "default 100]")
    add("--multi-model", action="store_true", default=None,
        help="multi-model endpoint: no model at start, load with POST /models [SAGEMAKER_MULTI_MODEL=true]")
    add("--model-root", help="multi-model: directory that model URLs must lie in "
                             "[default $SAGEMAKER_BASE_DIR/models]")
    add("--log-level", help="debug, info, warning, error [SAGEMAKER_CONTAINER_LOG_LEVEL, default info]")
    add("--access-log", action="store_true", default=None, help="log one line per request [SAGEMAKER_ACCESS_LOG]")
    add("--log-format", choices=("text", "json"), help="log lines as text or one JSON object each "
                                                        "[SAGEMAKER_LOG_FORMAT, default text]")
    add("--metrics-port", type=int, help="also serve /metrics, /livez and /readyz on this port "
                                         "[SAGEMAKER_METRICS_PORT; inside SAGEMAKER_SAFE_PORT_RANGE when set]")
    local_commands.register(commands)  # runtime, transform: a local SageMaker (sagemaker_inference.local)
    conformance_cli.register(commands)
    return parser


def config_from_args(argv: list[str] | None, environ: dict[str, str]) -> ServerConfig:
    argv = list(argv or [])
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    args = _parser().parse_args(argv)
    return ServerConfig.from_env(
        environ,
        host=args.host,
        port=args.port,
        model_dir=EXAMPLE_MODEL_DIR if args.example else args.model_dir,
        handler=args.handler,
        workers=args.workers,
        response_timeout=args.timeout,
        max_request_size=None if args.max_payload_mb is None else megabytes("--max-payload-mb", args.max_payload_mb),
        batch_size=args.batch_size,
        max_batch_delay=args.max_batch_delay,
        multi_model=args.multi_model,
        model_root=args.model_root,
        log_level=parse_log_level("--log-level", args.log_level) if args.log_level else None,
        access_log=args.access_log,
        log_format=args.log_format,
        metrics_port=args.metrics_port,
    )


def main(argv: list[str] | None = None) -> int:
    from sagemaker_inference.server import serve

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in local_commands.NAMES:
        args = _parser().parse_args(argv)
        return int(args.run(args))
    if argv[:1] == ["check"]:
        return conformance_cli.main(argv[1:])
    from sagemaker_inference.server import startup_signals

    startup_signals.install()  # serve: a stop signal before the event loop runs stops the start
    try:
        config = config_from_args(argv, dict(os.environ))
    except ConfigError as exc:
        print(f"sagemaker-inference: configuration error: {exc}", file=sys.stderr)
        return 2
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
