"""Drop-in replacement for the SageMaker Inference Toolkit (``sagemaker-inference`` 1.10.1).

Like upstream, importing the package does nothing: the public modules (``decoder``, ``encoder``,
``transformer``, ``default_handler_service``, ...) are imported by name. ``__version__`` is
read from the installed distribution on first access.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("sagemaker-inference")
        except PackageNotFoundError:  # run from a source tree that was never installed
            value = "0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
