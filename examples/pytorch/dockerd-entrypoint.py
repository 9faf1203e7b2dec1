"""Step 4: the container entrypoint, as in the toolkit's README: ``serve`` starts the model server.

SageMaker runs a hosting container as ``docker run IMAGE serve``. This script is the seed's,
unchanged in substance; with this package you may instead use the shipped console script
``sagemaker-inference-entrypoint`` and set ``SAGEMAKER_HANDLER=torch_serving.handler_service``
(see docs/deployment.md).
"""

import sys

from torch_serving import serving

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "train"):
        raise ValueError('Invalid argument. Please use "serve" or "train" as the first argument.')

    if sys.argv[1] == "serve":
        # Serve the model
        serving.main()
    elif sys.argv[1] == "train":
        # Train the model (not part of this example)
        pass
