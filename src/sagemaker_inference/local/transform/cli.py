"""``sagemaker-inference transform``: flags -> job settings -> run over the input -> summary and exit code."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from sagemaker_inference.local.transform.config import (
    ASSEMBLE_WITH,
    BATCH_STRATEGIES,
    COMPRESSION_TYPES,
    JOIN_SOURCES,
    SPLIT_TYPES,
    JobSettings,
    TransformConfigError,
    resolve,
    validate,
)

DESCRIPTION = """\
A SageMaker batch-transform job over local files: the same splitting, batching, assembly, joins and filters,
one <input>.out per input file, in input order.

  sagemaker-inference transform --model-dir ./model --input data/ --output out/ \\
      --content-type text/csv --accept text/csv --split-type Line --batch-strategy MultiRecord --assemble-with Line
"""


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("transform", help="run a batch-transform job over local files",
                                 description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint-url", help="a running container, e.g. http://127.0.0.1:8080")
    where.add_argument("--model-dir", help="start our server on this model for the job, stop it after")
    add("--input", required=True, help="an input file, or a folder (every file under it)")
    add("--output", required=True, help="folder for the <input name>.out files")
    add("--content-type", help="Content-Type of each request (e.g. text/csv, application/jsonlines)")
    add("--accept", help="Accept of each request")
    add("--split-type", default="None", choices=SPLIT_TYPES, help="how to split an input file (default None)")
    add("--compression-type", default="None", choices=COMPRESSION_TYPES, help="Gzip: decompress first")
    add("--batch-strategy", choices=BATCH_STRATEGIES,
        help="records per request [default: the container's /execution-parameters, else SingleRecord]")
    add("--max-payload", type=int, metavar="MB", help="request size limit [default: the container's, else 6]")
    add("--max-concurrent-transforms", type=int, metavar="N",
        help="requests in flight [default: the container's, else 1]")
    add("--assemble-with", default="None", choices=ASSEMBLE_WITH, help="Line: a newline after each output record")
    add("--input-filter", metavar="JSONPATH", help="applied to each input record, e.g. '$[1:]'")
    add("--join-source", default="None", choices=JOIN_SOURCES, help="Input: join each output with its input")
    add("--output-filter", metavar="JSONPATH", help="applied to each (joined) output record, e.g. '$[0,-1]'")
    add("--timeout", type=float, default=600.0, help="seconds per request (default 600)")
    add("--max-retries", type=int, default=3, help="retries of a request that got a 5xx or no answer (default 3)")
    add("--force", action="store_true", help="redo objects whose .out already exists")
    add("--progress", choices=("auto", "bar", "lines"), default="auto",
        help="a progress bar (default on a terminal) or plain lines")
    parser.set_defaults(run=main)


def settings_from_args(args: argparse.Namespace) -> JobSettings:
    settings = JobSettings(content_type=args.content_type, accept=args.accept, split_type=args.split_type,
                           compression_type=args.compression_type, assemble_with=args.assemble_with,
                           join_source=args.join_source, input_filter=args.input_filter,
                           output_filter=args.output_filter, batch_strategy=args.batch_strategy,
                           max_payload_mb=args.max_payload, max_concurrent_transforms=args.max_concurrent_transforms,
                           invocation_timeout=args.timeout, max_retries=args.max_retries)
    validate(settings)
    return settings


def main(args: argparse.Namespace) -> int:
    prog = "sagemaker-inference transform"
    try:
        settings = settings_from_args(args)
        source = Path(args.input)
        if not source.exists():
            raise TransformConfigError(f"--input {args.input}: no such file or folder")
        import httpx  # noqa: F401
    except TransformConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except ImportError:
        print(f"{prog}: needs httpx and tqdm: pip install 'sagemaker-inference[local]'", file=sys.stderr)
        return 1
    container = None
    try:
        if args.model_dir is not None:
            from sagemaker_inference.local.transform.container import JobContainer

            container = JobContainer(args.model_dir, settings)
            container.wait_ready()
        url = container.url if container is not None else args.endpoint_url
        return asyncio.run(_run(settings, url, source, Path(args.output), args))
    except TransformConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # ContainerError, or the container not reachable
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if container is not None:
            container.stop()


async def _execution_parameters(client: Any, url: str) -> dict[str, Any]:
    import httpx

    try:
        response = await client.get(url.rstrip("/") + "/execution-parameters", timeout=30)
    except httpx.TransportError as exc:
        raise RuntimeError(f"the container at {url} is not reachable: {exc}") from None
    if response.status_code != 200:
        return {}  # a container without the endpoint: SageMaker's defaults apply
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


async def _run(settings: JobSettings, url: str, source: Path, output: Path, args: argparse.Namespace) -> int:
    import httpx

    from sagemaker_inference.local.transform.job import TransformJob, input_objects
    from sagemaker_inference.local.transform.progress import Progress

    async with httpx.AsyncClient(timeout=settings.invocation_timeout) as client:
        job = resolve(settings, await _execution_parameters(client, url))
        total = sum(path.stat().st_size for path, _ in input_objects(source))
        progress = Progress(total, bar={"auto": None, "bar": True, "lines": False}[args.progress])
        progress.line(f"transform: {source} -> {output} via {url}: {job.batch_strategy}, "
                      f"MaxPayloadInMB {job.max_payload // (1024 * 1024)}, MaxConcurrentTransforms "
                      f"{job.max_concurrent_transforms}")
        try:
            summary = await TransformJob(job, client, url, progress).run(source, output, args.force)
        finally:
            progress.close()
    print(summary.text(), file=sys.stderr)
    for failure in summary.failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if summary.failures else 0
