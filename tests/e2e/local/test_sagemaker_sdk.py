"""The SageMaker Python SDK's ``Predictor`` pointed at the emulator, run by an interpreter that has the SDK.

The SDK is large (a separate venv: ``python -m venv --system-site-packages sdk && sdk/bin/pip install
'sagemaker<3'``) so it is not a test dependency: set ``SAGEMAKER_SDK_PYTHON=sdk/bin/python`` to run this, or
install it in the test environment. Skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.e2e.local.runtimeproc import chunked_container, emulator
from tests.e2e.serverproc import ServerProcess

SCRIPT = """
import json, sys
import boto3, sagemaker
from sagemaker.deserializers import JSONDeserializer
from sagemaker.predictor import Predictor
from sagemaker.serializers import CSVSerializer, JSONSerializer

boto_session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
runtime = boto_session.client("sagemaker-runtime", endpoint_url=sys.argv[1])
session = sagemaker.Session(boto_session=boto_session, sagemaker_runtime_client=runtime)
predictor = Predictor("example", sagemaker_session=session, serializer=JSONSerializer(),
                      deserializer=JSONDeserializer())
csv = Predictor("example", sagemaker_session=session, serializer=CSVSerializer(), deserializer=JSONDeserializer())
streamed = Predictor("chunky", sagemaker_session=session)
result = {"json": predictor.predict([[1, 2, 3, 4]]), "csv": csv.predict([[1, 2, 3, 4], [5, 6, 7, 8]])}
if hasattr(streamed, "predict_stream"):
    result["stream"] = b"".join(streamed.predict_stream(b"chunks:3")).decode()
print(json.dumps(result))
"""


def sdk_python() -> str | None:
    configured = os.environ.get("SAGEMAKER_SDK_PYTHON")
    if configured:
        return configured
    return sys.executable if importlib.util.find_spec("sagemaker") is not None else None


@pytest.mark.skipif(sdk_python() is None, reason="the SageMaker Python SDK is not installed (SAGEMAKER_SDK_PYTHON)")
def test_sagemaker_sdk_predictor_against_the_emulator(tmp_path):
    from sagemaker_inference.server.cli import EXAMPLE_MODEL_DIR

    with ServerProcess(["--model-dir", EXAMPLE_MODEL_DIR, "--workers", "1"]) as server, \
            chunked_container() as container:
        server.wait_ready()
        direct = server.client.post("/invocations", content=b"1,2,3,4\n5,6,7,8", headers={
            "Content-Type": "text/csv", "Accept": "application/json"}).json()
        with emulator("--endpoint", f"example={server.url}", "--endpoint", f"chunky={container.url}") as rt:
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            done = subprocess.run([sdk_python(), "-c", SCRIPT, rt.url], capture_output=True, text=True,
                                  timeout=120, env={**env, "SAGEMAKER_SUPPRESS_V2_WARNING": "1"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["json"] == [[1.5, 2.0]]
    assert result["csv"] == direct  # the same answer as straight from the container
    if "stream" in result:
        assert result["stream"] == "part-0\npart-1\npart-2\n"
