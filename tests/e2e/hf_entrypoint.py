"""The Hugging Face DLC's entrypoint, as its container runs it: ``serving.main()``.

Two things differ from a container, both about the test machine, not the code under test: the
process makes itself a child subreaper (as PID 1 is in a container, so the server the launcher
leaves in the background is re-parented to it and its whole tree stays under it), and the
properties file goes to ``$HF_TEST_MMS_CONFIG_FILE`` instead of ``/etc/sagemaker-mms.properties``
(not writable, and shared, on a test machine).
"""

from __future__ import annotations

import ctypes
import os

PR_SET_CHILD_SUBREAPER = 36


def main() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    import sagemaker_inference.model_server as model_server

    model_server.MMS_CONFIG_FILE = os.environ["HF_TEST_MMS_CONFIG_FILE"]
    from sagemaker_huggingface_inference_toolkit import serving

    serving.main()


if __name__ == "__main__":
    main()
