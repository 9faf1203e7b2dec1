# A SageMaker inference image with this toolkit and its model server: pure Python, no JVM.
#
#   docker build -t sagemaker-inference .
#   docker run --rm -p 8080:8080 -v "$PWD/model:/opt/ml/model:ro" sagemaker-inference
#
# The model directory holds your model files and code/inference.py (docs/quickstart.md). For a
# framework image, build FROM this one and add the framework (examples/pytorch/Dockerfile).
FROM python:3.11-slim

# SageMaker reads these: it may choose the port (SAGEMAKER_BIND_TO_PORT), host many models on
# one endpoint (SAGEMAKER_MULTI_MODEL=true) and open WebSocket sessions to the container
# (InvokeEndpointWithBidirectionalStream, docs/streaming.md). The server supports all three.
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      com.amazonaws.sagemaker.capabilities.multi-models=true \
      com.amazonaws.sagemaker.capabilities.bidirectional-streaming=true

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md /tmp/sagemaker-inference/
COPY src /tmp/sagemaker-inference/src
RUN pip install /tmp/sagemaker-inference && rm -rf /tmp/sagemaker-inference

EXPOSE 8080

# SageMaker runs `docker run IMAGE serve`, which replaces CMD, so `serve` must not be part of
# ENTRYPOINT (it would arrive twice). The entrypoint runs the server as PID 1: SIGTERM drains
# in-flight requests and exits 0; any other command (`docker run -it IMAGE bash`) is exec'd.
ENTRYPOINT ["sagemaker-inference-entrypoint"]
CMD ["serve"]
