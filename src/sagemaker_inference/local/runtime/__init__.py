"""``sagemaker-inference runtime``: the SageMaker Runtime API (InvokeEndpoint, InvokeEndpointWithResponseStream,
InvokeEndpointAsync) served locally in front of running containers, for ``boto3`` with ``endpoint_url``.

Modules: ``config`` (flags -> frozen ``RuntimeConfig``), ``errors`` (the API's error shapes), ``http`` (the
serving side: our sans-IO request parser plus a small asyncio adapter that can also stream), ``operations`` (the
three calls), ``multimodel`` (TargetModel load-on-first-use), ``asyncjobs`` (the async queue), ``cli``.
"""
