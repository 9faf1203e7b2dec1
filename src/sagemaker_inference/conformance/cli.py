"""``sagemaker-inference check URL | --serve MODEL_DIR``: run the conformance kit, print a table, exit 0 or 1.

``register(subparsers)`` adds the command to the main CLI's parser (so ``--help`` lists it); ``main(argv)`` runs it.
Exit status: 0 every check passed, 1 some failed, 2 usage or setup error (bad URL, server not reachable).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DESCRIPTION = """\
Probe a server that speaks the SageMaker hosting contract (ours, MMS-based, TorchServe...) and report each
contract point as pass or fail with its figure: accept and /ping latency (idle, at full load, beside 500 slow
connections), /invocations round trips, 4xx (never 5xx, never a hang) for a corpus of malformed HTTP and
payloads (>= 1,000 cases in full mode), the payload limit, half-close, request smuggling, timeouts, the
multi-model lifecycle and path safety. With --serve the kit starts the server itself and also checks startup
time, kill -9 of a worker and SIGTERM under load.

  sagemaker-inference check http://127.0.0.1:8080 --quick
  sagemaker-inference check --serve ./my-model --json report.json
  sagemaker-inference check --serve ./my-model --serve-command 'docker run --rm -p {port}:8080 my-image serve'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("url", nargs="?", help="the server to probe, http://HOST:PORT (network goes to this address only)")
    add("--serve", metavar="MODEL_DIR", help="start the server on MODEL_DIR (a free port) and also run the checks "
                                             "that own the process")
    add("--serve-command", metavar="CMD", help="with --serve: the command to start, {port} {model_dir} {base_dir} "
                                               "{python} replaced (default: our server)")
    add("--multi-model", action="store_true", default=None,
        help="the server is multi-model (default: detected); with --serve: start one (SAGEMAKER_MULTI_MODEL=true)")
    add("--workers", type=int, default=2, help="with --serve: SAGEMAKER_MODEL_SERVER_WORKERS (default 2)")
    add("--keep-dir", action="store_true", help="with --serve: keep the work dir (model copy, server.log)")
    add("--startup-timeout", type=float, default=120.0, help="with --serve: seconds to wait for /ping 200")
    add("--quick", action="store_true", help="the quick subset (under a minute)")
    add("--json", metavar="FILE", help="also write the results as JSON to FILE ('-' for stdout)")
    add("--only", metavar="NAMES", help="comma-separated check names or prefixes (e.g. http.,payload.npy-pickle)")
    add("--sample", action="append", default=[], metavar="TYPE=FILE",
        help="a valid request body for a content type (repeatable; default: a row of four numbers as JSON, CSV, "
             "NPY)")
    add("--max-payload", type=int, metavar="BYTES", help="the payload limit to test (default: what "
                                                         "/execution-parameters declares, else 6 MiB)")
    add("--mme-model", metavar="URL", help="a model URL the multi-model server can load, for the lifecycle check")
    add("--soak", type=float, default=0.0, metavar="SECONDS", help="also soak for SECONDS (errors, RSS growth)")
    add("--read-timeout", type=float, help="seconds one answer may take before it counts as a hang "
                                           "(default 5 quick, 10 full)")
    add("--list", action="store_true", help="list the checks and exit")


def register(subparsers: Any) -> None:
    """Add ``check`` to the main CLI (``sagemaker-inference check ...``)."""
    add_arguments(subparsers.add_parser("check", help="probe a server against the SageMaker hosting contract",
                                        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagemaker-inference check", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sagemaker_inference.conformance import report, runner
    from sagemaker_inference.conformance.probe import ConfigurationError, Options, Probe, default_samples
    from sagemaker_inference.conformance.registry import load_all

    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for item in load_all():
            modes = "/".join(sorted(item.modes)) + (f", needs {'+'.join(sorted(item.needs))}" if item.needs else "")
            print(f"{', '.join(item.names)}  [{modes}]\n    {item.about}")
        return 0
    if bool(args.url) == bool(args.serve):
        parser.error("give a URL to probe, or --serve MODEL_DIR (not both)")
    try:
        options = Options(quick=args.quick, read_timeout=args.read_timeout or (5.0 if args.quick else 10.0),
                          samples=_samples(args.sample) if args.sample else default_samples(),
                          max_payload=args.max_payload, mme_model=args.mme_model, soak=args.soak)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    served = None
    try:
        if args.serve:
            from sagemaker_inference.conformance.served import ServedServer

            served = ServedServer(args.serve, args.serve_command, args.workers, bool(args.multi_model))
            print(f"starting {' '.join(served.argv)}", file=sys.stderr)
            served.start(args.startup_timeout)
        probe = Probe.for_url(served.url if served else args.url, options, served)
        probe.discover(served.multi_model if served else args.multi_model)
        only = {n.strip() for n in args.only.split(",") if n.strip()} if args.only else None
        result = runner.run(probe, only, progress=sys.stderr.isatty())
    except (ConfigurationError, RuntimeError, OSError) as exc:
        print(f"sagemaker-inference check: {exc}", file=sys.stderr)
        return 2
    finally:
        if served is not None:
            served.stop(keep_dir=args.keep_dir)
            if args.keep_dir:
                print(f"kept {served.workdir} (server log: {served.log_path})", file=sys.stderr)
    print(report.table(result))
    if args.json:
        if args.json == "-":
            import json

            print(json.dumps(report.to_json(result), indent=2))
        else:
            report.write_json(result, args.json)
    return 0 if result.ok else 1


def _samples(specs: list[str]) -> dict[str, bytes]:
    samples = {}
    for spec in specs:
        content_type, sep, path = spec.partition("=")
        if not sep or not content_type or not path:
            raise ValueError(f"--sample wants TYPE=FILE, got {spec!r}")
        with open(path, "rb") as f:
            samples[content_type] = f.read()
    return samples
