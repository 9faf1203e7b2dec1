"""Resolving a handler string to ``(initialize, handle)`` the way MMS does.

``H`` is split once on ``:`` into a module part and an optional function name. A ``.py`` suffix
and any directory part are dropped from the module part; the directory goes on ``sys.path`` (MMS
puts it on the worker's ``PYTHONPATH``). Dotted names import as
packages. Then:

* function form: the module has the function (default name ``handle``); it is called once as
  ``fn(None, context)`` to initialize, then ``fn(data, context)`` per batch;
* class form: the module defines exactly one class of its own; it is instantiated with no
  arguments, ``initialize(context)`` runs once, ``handle(data, context)`` per batch.

Unlike MMS, an exception in ``initialize`` fails the load instead of being logged and ignored:
a model that cannot load must not report healthy.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any, Callable, NamedTuple

Handle = Callable[[Any, Any], Any]


class HandlerError(Exception):
    """The handler string does not name a usable entry point."""


class HandlerSpec(NamedTuple):
    module: str
    function: str  # empty: class form or default ``handle``
    directory: str  # added to sys.path before import ("" for none)


def parse_handler(handler: str) -> HandlerSpec:
    """Pure: split a handler string into module, function and directory."""
    if not handler or not handler.strip():
        raise HandlerError("no handler given")
    module_part, _, function = handler.strip().partition(":")
    directory = ""
    if module_part.endswith(".py"):
        module_part = module_part[:-3]
    if "/" in module_part:
        directory, _, module_part = module_part.rpartition("/")
    if not module_part:
        raise HandlerError(f"handler {handler!r} names no module")
    return HandlerSpec(module_part, function, directory)


def load_handler(handler: str, context: Any) -> Handle:
    """Import, instantiate and initialize; return the per-batch entry point."""
    spec = parse_handler(handler)
    if spec.directory:
        path = os.path.abspath(spec.directory)
        if path not in sys.path:
            sys.path.insert(0, path)
    module = importlib.import_module(spec.module)
    function_name = spec.function or "handle"
    function = getattr(module, function_name, None)
    if function is not None:
        if not callable(function):
            raise HandlerError(f"{spec.module}.{function_name} is not callable")
        function(None, context)
        return function
    if spec.function:
        raise HandlerError(f"module {spec.module!r} has no function {spec.function!r}")
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__]
    if len(classes) != 1:
        raise HandlerError("Expected only one class in custom service code or a function entry point "
                           f"{[c.__name__ for c in classes]}")
    service: Any = classes[0]()
    initialize = getattr(service, "initialize", None)
    if initialize is None:
        raise HandlerError(f"{classes[0].__name__} has no initialize(context) method")
    initialize(context)
    return service.handle
