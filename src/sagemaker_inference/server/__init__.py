"""Our model server: an asyncio HTTP frontend and a pool of worker processes per model.

Nothing here runs at import time. ``serve(config)`` is the entry point (the CLI and
``model_server.start_model_server`` call it).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagemaker_inference.server.config import ServerConfig


def serve(config: ServerConfig) -> int:
    """Run the server in this process until it stops; return its exit code.

    The startup model's workers are started first, before the server imports its event loop and
    HTTP layer: the two start-ups overlap, which is most of the time to the first 200.
    """
    from sagemaker_inference.server import startup_signals
    from sagemaker_inference.server.logs import configure as configure_logging
    from sagemaker_inference.server.preflight import model_dir_problem
    from sagemaker_inference.server.workers.spawn import spawn_worker, worker_env

    configure_logging(config.log_level, config.log_format)
    if startup_signals.received():
        return 0  # stopped before we started
    problem = None if config.multi_model else model_dir_problem(config.model_dir)
    if problem:
        import logging

        logging.getLogger("sagemaker_inference.server").error("startup failed: %s", problem)
        return 1
    prespawned = []
    if not config.multi_model:
        import os

        env = worker_env(os.environ)
        prespawned = [spawn_worker(config.python or sys.executable, config.model_name, config.log_level, env,
                                   handler=config.handler, model_dir=config.model_dir, log_format=config.log_format)
                      for _ in range(config.worker_count)]
    from sagemaker_inference.server.supervisor import run

    return run(config, prespawned)
