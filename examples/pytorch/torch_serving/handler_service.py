"""Step 2: the handler service the model server runs for each worker.

``initialize(context)`` loads the model once per worker, ``handle(data, context)`` serves each
batch; both come from ``DefaultHandlerService``. All this class chooses is the default handler.
"""

from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer
from torch_serving.default_inference_handler import DefaultPytorchInferenceHandler


class HandlerService(DefaultHandlerService):
    """The model server instantiates this class (the only class defined in this module)."""

    def __init__(self) -> None:
        transformer = Transformer(default_inference_handler=DefaultPytorchInferenceHandler())
        super().__init__(transformer=transformer)
