"""``sagemaker-inference runtime``: flags -> ``RuntimeConfig`` -> serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from sagemaker_inference.local.runtime.config import RuntimeConfig, RuntimeConfigError, endpoints_from_specs

DESCRIPTION = """\
The SageMaker Runtime API on your machine, in front of running containers: the boto3 code you run against
AWS works unchanged with endpoint_url pointing here.

  sagemaker-inference serve --example --port 8080 &
  sagemaker-inference runtime --port 8090 --endpoint my-endpoint=http://127.0.0.1:8080
  python -c "import boto3; rt = boto3.client('sagemaker-runtime', endpoint_url='http://127.0.0.1:8090',
      region_name='us-east-1'); print(rt.invoke_endpoint(EndpointName='my-endpoint',
      ContentType='application/json', Body=b'[[1,2,3,4]]')['Body'].read())"
"""


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("runtime", help="emulate the SageMaker Runtime API in front of containers",
                                 description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--port", type=int, default=8090, help="port to listen on (default 8090)")
    add("--endpoint", action="append", default=[], metavar="NAME[/VARIANT]=URL[:WEIGHT]",
        help="an endpoint (variant AllTraffic) or one production variant of it; repeat for more")
    add("--model-data", help="multi-model: folder holding the TargetModel archives or folders (the S3 prefix)")
    add("--model-root", help="multi-model: the container's model root, where TargetModels are extracted")
    add("--async-output", help="folder for InvokeEndpointAsync output and failure files")
    add("--async-concurrency", type=int, default=4, help="async requests run at once (default 4)")
    add("--invocation-timeout", type=float, default=60.0, help="seconds a container may take (default 60)")
    add("--model-load-wait", type=float, default=60.0,
        help="seconds a call waits for its TargetModel to load before ModelNotReadyException (default 60)")
    add("--log-level", default="info", help="debug, info, warning, error (default info)")
    parser.set_defaults(run=main)


def config_from_args(args: argparse.Namespace) -> RuntimeConfig:
    if (args.model_data is None) != (args.model_root is None):
        raise RuntimeConfigError("--model-data and --model-root go together (multi-model endpoints)")
    for flag, value in (("--async-concurrency", args.async_concurrency), ("--invocation-timeout",
                        args.invocation_timeout), ("--model-load-wait", args.model_load_wait)):
        if not value > 0:
            raise RuntimeConfigError(f"{flag} {value}: must be positive")
    return RuntimeConfig(endpoints=endpoints_from_specs(args.endpoint), host=args.host, port=args.port,
                         model_data=args.model_data, model_root=args.model_root, async_output=args.async_output,
                         async_concurrency=args.async_concurrency, invocation_timeout=args.invocation_timeout,
                         model_load_wait=args.model_load_wait)


def main(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except RuntimeConfigError as exc:
        print(f"sagemaker-inference runtime: {exc}", file=sys.stderr)
        return 2
    try:
        import httpx  # noqa: F401
    except ImportError:
        print("sagemaker-inference runtime: needs httpx: pip install 'sagemaker-inference[local]'", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level.lower() != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request to the container is noise
    try:
        _run(serve(config))
    except OSError as exc:
        print(f"sagemaker-inference runtime: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop when it is there (a dependency of the server on every platform but Windows), as the server."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    if hasattr(uvloop, "run"):
        uvloop.run(main)
    else:  # uvloop < 0.18
        uvloop.install()
        asyncio.run(main)


async def serve(config: RuntimeConfig) -> None:
    import httpx

    from sagemaker_inference.local.runtime import http
    from sagemaker_inference.local.runtime.asyncjobs import AsyncJobs
    from sagemaker_inference.local.runtime.multimodel import MultiModel
    from sagemaker_inference.local.runtime.operations import Runtime

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=config.invocation_timeout) as client:
        models = None
        if config.model_data is not None and config.model_root is not None:
            models = MultiModel(client, config.model_data, config.model_root, config.model_load_wait)
        jobs = None
        if config.async_output is not None:
            jobs = AsyncJobs(None, config.async_output, config.async_concurrency, config.async_queue_size)
        runtime = Runtime(config, client, models, jobs)
        if jobs is not None:
            jobs.start(runtime)
        server = await asyncio.start_server(functools.partial(http.connection, runtime.handle), config.host,
                                            config.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        names = ", ".join(f"{e.name} ({', '.join(f'{v.name} -> {v.url}' for v in e.variants)})"
                          for e in config.endpoints.values())
        logging.getLogger("sagemaker_inference.local.runtime").info(
            "SageMaker Runtime API on http://%s:%d: %s", config.host, config.port, names)
        await stop.wait()
        server.close()
        if jobs is not None:
            await jobs.stop()
