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
    from sagemaker_inference.server.workers.spawn import spawn_worker, worker_env

    prespawned = []
    if not config.multi_model:
        import os

        env = worker_env(os.environ)
        prespawned = [spawn_worker(config.python or sys.executable, config.model_name, config.log_level, env,
                                   handler=config.handler, model_dir=config.model_dir, log_format=config.log_format)
                      for _ in range(config.worker_count)]
    from sagemaker_inference.server.supervisor import run

    return run(config, prespawned)
