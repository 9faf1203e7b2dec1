"""A local SageMaker: the platform side that calls a serving container.

``runtime`` emulates the SageMaker Runtime API (what ``boto3.client("sagemaker-runtime")`` talks to) in front of
running containers; ``transform`` runs a batch-transform job over local files. Both sit beside the server, not
inside it: they speak to any container over HTTP, ours or an MMS-based one. Their HTTP client (httpx) and progress
bar (tqdm) come with the ``[local]`` extra and are imported only when a command runs.
"""
