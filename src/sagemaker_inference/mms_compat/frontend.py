"""The server process ``multi-model-server`` starts: MMS's configuration in, our server out.

Run as ``python -m sagemaker_inference.mms_compat.frontend <the launcher's flags> --namespace
com.amazonaws.ml.mms.ModelServer``; the last flag only makes the process findable the way the
toolkits look for MMS's JVM. Exits with the server's exit code and removes the pid file that
names it.
"""

from __future__ import annotations

import logging
import os
import sys

from sagemaker_inference.mms_compat import launcher, processes
from sagemaker_inference.server.config import ConfigError
from sagemaker_inference.server.logs import configure as configure_logging

logger = logging.getLogger("sagemaker_inference.mms_compat")


def main(argv: list[str] | None = None) -> int:
    parser = launcher.parser(prog="sagemaker_inference.mms_compat.frontend")
    parser.add_argument("--namespace", help="marker for process lookups; ignored")
    args = parser.parse_args(argv)
    try:
        translation = launcher.load(args, os.environ)
    except ConfigError as exc:
        print(f"multi-model-server: configuration error: {exc}", file=sys.stderr)
        return 2
    config = translation.config
    configure_logging(config.log_level, config.log_format)
    for note in translation.notes:
        logger.warning("%s", note)
    mode = "multi-model" if config.multi_model else f"model {config.model_name!r} from {config.model_dir}"
    logger.info("multi-model-server: serving %s with sagemaker-inference (no JVM), configuration %s",
                mode, args.mms_config or "(none)")
    from sagemaker_inference.server import serve

    try:
        return serve(config)
    finally:
        if processes.read_pid() == os.getpid():
            processes.remove_pid_file()


if __name__ == "__main__":
    sys.exit(main())
