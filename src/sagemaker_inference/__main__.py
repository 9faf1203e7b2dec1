"""``python -m sagemaker_inference serve``."""

import sys

from sagemaker_inference.server.cli import main

sys.exit(main())
