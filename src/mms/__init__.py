"""Multi Model Server's Python names, provided by sagemaker-inference (no Java).

Handler services written for MMS import ``mms.service.PredictionException``,
``mms.context.Context``, ``mms.metrics...``; these modules re-export the classes our workers
create and pass to handlers (``sagemaker_inference.context``), so ``isinstance`` checks and
``raise PredictionException(message, code)`` behave as under MMS. ``__version__`` is the MMS
version whose behaviour is reproduced. If the real ``multi-model-server`` distribution is installed
too, see ``sagemaker_inference.mms_compat.detect`` and docs/migrating.md.
"""

from mms import version

__version__ = version.__version__
__implementation__ = "sagemaker-inference"
