"""The container entrypoint: ``serve`` starts the model server, anything else runs as a command.

This is the seed's ``dockerd-entrypoint.py`` shipped as a console script, so an image needs no
script of its own::

    ENTRYPOINT ["sagemaker-inference-entrypoint"]
    CMD ["serve"]

SageMaker starts a hosting container as ``docker run IMAGE serve``; ``docker run IMAGE bash``
(or any other command) runs that command instead, which is how people debug an image.

Why it is safe as PID 1:

* ``serve`` runs the server **in this process** (the same ``sagemaker-inference serve`` code
  path, no wrapper and no second interpreter). The server installs its own SIGTERM/SIGINT
  handlers, so the kernel's "PID 1 ignores signals it has no handler for" rule does not bite:
  SIGTERM drains in-flight requests and exits 0. It also reaps every child, including orphans
  re-parented to it.
* any other command **replaces** this process (``exec``), exactly like ``exec "$@"`` in a shell
  entrypoint: signals reach the command directly and its exit status is the container's. A
  command that is not PID-1-safe itself (no SIGTERM handler, never reaps) should be run with
  ``docker run --init``, as with any image.

The port comes from ``SAGEMAKER_BIND_TO_PORT`` (SageMaker sets it when the image carries the
``accept-bind-to-port`` label), the model from ``SAGEMAKER_BASE_DIR``/model, i.e.
``/opt/ml/model``; flags after ``serve`` are the ``sagemaker-inference serve`` flags.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn, Optional

SERVE = "serve"
USAGE = """\
usage: sagemaker-inference-entrypoint [serve [FLAGS...] | COMMAND [ARGS...]]

  serve      start the model server (the default); FLAGS as for `sagemaker-inference serve --help`
  COMMAND    anything else is executed in place of this process (e.g. bash, python train.py)
"""
EXIT_NOT_FOUND = 127  # the shell's "command not found"
EXIT_NOT_EXECUTABLE = 126  # the shell's "found but cannot run"


def main(argv: Optional[list[str]] = None) -> int:
    """Dispatch on the first argument; return the server's exit code (a command never returns)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] == SERVE:
        return serve(args[1:])
    if args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    run_command(args)


def serve(flags: list[str]) -> int:
    """Run the model server in this process until it is stopped; its exit code is ours."""
    from sagemaker_inference.server.cli import main as cli_main

    return cli_main(["serve", *flags])


def run_command(args: list[str]) -> NoReturn:
    """Replace this process with ``args`` (looked up on ``PATH``), as ``exec "$@"`` would."""
    sys.stdout.flush()
    sys.stderr.flush()
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
