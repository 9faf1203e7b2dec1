"""Step 3: the serving entrypoint: start the model server with our handler service.

``start_model_server`` blocks until the server stops (SIGTERM drains in-flight requests). It
serves the model in ``$SAGEMAKER_BASE_DIR/model`` (``/opt/ml/model``) on
``$SAGEMAKER_BIND_TO_PORT`` (8080).
"""

from sagemaker_inference import model_server

HANDLER_SERVICE = "torch_serving.handler_service"


def main() -> None:
    model_server.start_model_server(handler_service=HANDLER_SERVICE)
