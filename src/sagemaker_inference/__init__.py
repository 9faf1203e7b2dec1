"""Drop-in replacement for the SageMaker Inference Toolkit (``sagemaker-inference`` 1.10.1).

Like upstream, importing the package does nothing: the public modules (``decoder``, ``encoder``,
``transformer``, ``default_handler_service``, ...) are imported by name.
"""
