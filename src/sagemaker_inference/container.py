"""The container entrypoint: ``serve`` starts the model server, anything else runs as a command.

This is the seed's ``dockerd-entrypoint.py`` shipped as a console script, so an image needs no
script of its own::

    ENTRYPOINT ["sagemaker-inference-entrypoint"]
    CMD ["serve"]

SageMaker starts a hosting container as ``docker run IMAGE serve``; ``docker run IMAGE bash``
(or any other command) runs that command instead, which is how people debug an image.

Why it is safe as PID 1:

* ``serve`` runs the server **in this process**, through ``model_server.start_model_server``
  (the path a framework container's own serving entrypoint takes: ``code/requirements.txt`` is
  installed, the code directory put on ``PYTHONPATH``), with no wrapper and no second
  interpreter. The server installs its own SIGTERM/SIGINT handlers, so the kernel's "PID 1
  ignores signals it has no handler for" rule does not bite: SIGTERM drains in-flight requests
  and exits 0. It also reaps every child, including orphans re-parented to it.
* any other command **replaces** this process (``exec``), exactly like ``exec "$@"`` in a shell
  entrypoint: signals reach the command directly and its exit status is the container's. A
  command that is not PID-1-safe itself (no SIGTERM handler, never reaps) should be run with
  ``docker run --init``, as with any image.

Everything is configured by environment variables, as SageMaker does (docs/configuration.md):
the port from ``SAGEMAKER_BIND_TO_PORT`` (SageMaker sets it when the image carries the
``accept-bind-to-port`` label), the model from ``$SAGEMAKER_BASE_DIR/model`` (``/opt/ml/model``),
the handler service from ``SAGEMAKER_HANDLER`` (default: the toolkit's, which runs
``code/inference.py``). ``serve`` takes no flags, so that what runs on SageMaker is exactly what
``docker run IMAGE`` runs; for flags, run ``sagemaker-inference serve ...`` as the command.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

SERVE = "serve"
USAGE = """\
usage: sagemaker-inference-entrypoint [serve | COMMAND [ARGS...]]

  serve      start the model server (the default), configured by environment variables:
             SAGEMAKER_BIND_TO_PORT, SAGEMAKER_HANDLER, SAGEMAKER_MODEL_SERVER_WORKERS, ...
  COMMAND    anything else is executed in place of this process (e.g. bash, or
             `sagemaker-inference serve --example` to try the image without a model)
"""
EXIT_USAGE = 2
EXIT_NOT_FOUND = 127  # the shell's "command not found"
EXIT_NOT_EXECUTABLE = 126  # the shell's "found but cannot run"


def main(argv: list[str] | None = None) -> int:
    """Dispatch on the first argument; return the server's exit code (a command never returns)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args in ([], [SERVE]):
        from sagemaker_inference.server import startup_signals

        startup_signals.install()  # first thing: as PID 1 a signal without a handler is lost
        return serve()
    if args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    if args[0] == SERVE:
        print(f"sagemaker-inference-entrypoint: serve takes no arguments (got {' '.join(args[1:])}); "
              "configure it with environment variables\n", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        return EXIT_USAGE
    run_command(args)


def serve() -> int:
    """Run the model server in this process until it is stopped; its exit code is ours.

    ``start_model_server`` returns when the server stopped cleanly (SIGTERM drained) and raises
    ``SystemExit`` with a non-zero code when it could not start; both pass straight through.
    """
    from sagemaker_inference import model_server

    handler_service = os.environ.get("SAGEMAKER_HANDLER") or model_server.DEFAULT_HANDLER_SERVICE
    model_server.start_model_server(handler_service=handler_service)
    return 0


def run_command(args: list[str]) -> NoReturn:
    """Replace this process with ``args`` (looked up on ``PATH``), as ``exec "$@"`` would.

    Python ignores SIGPIPE and SIGXFSZ for itself; ignored dispositions survive exec, so they are
    reset first (``yes | head -1`` must end ``yes`` by SIGPIPE, not print "Broken pipe").
    """
    sys.stdout.flush()
    sys.stderr.flush()
    import signal

    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvp(args[0], args)
    except FileNotFoundError:
        print(f"sagemaker-inference-entrypoint: {args[0]}: command not found", file=sys.stderr)
        sys.exit(EXIT_NOT_FOUND)
    except OSError as exc:
        print(f"sagemaker-inference-entrypoint: {args[0]}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(EXIT_NOT_EXECUTABLE)


if __name__ == "__main__":
    sys.exit(main())
