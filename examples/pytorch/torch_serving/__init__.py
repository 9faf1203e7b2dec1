"""A PyTorch serving container in four files, following the toolkit's four steps.

1. ``default_inference_handler.py``: how to load a TorchScript model and run it;
2. ``handler_service.py``: the handler service the model server runs;
3. ``serving.py``: the serving entrypoint that starts the model server;
4. ``../dockerd-entrypoint.py``: the container entrypoint (``serve``).
"""
