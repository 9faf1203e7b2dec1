"""Handler strings resolved as MMS does: module, module:function, path/to/file.py:function, one class."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

import pytest

from sagemaker_inference.server.workers.handler import HandlerError, HandlerSpec, load_handler, parse_handler

_names = itertools.count()


@pytest.mark.parametrize(
    ("handler", "spec"),
    [
        ("handler", HandlerSpec("handler", "", "")),
        ("handler.py", HandlerSpec("handler", "", "")),
        ("handler:predict", HandlerSpec("handler", "predict", "")),
        ("handler.py:predict", HandlerSpec("handler", "predict", "")),
        ("dir/handler", HandlerSpec("handler", "", "dir")),
        ("/abs/dir/handler.py:handle", HandlerSpec("handler", "handle", "/abs/dir")),
        ("path/to/file.py:function", HandlerSpec("file", "function", "path/to")),
        ("sagemaker_inference.default_handler_service", HandlerSpec("sagemaker_inference.default_handler_service",
                                                                    "", "")),
        ("pkg.mod:fn", HandlerSpec("pkg.mod", "fn", "")),
        ("  handler:fn  ", HandlerSpec("handler", "fn", "")),
        ("a:b:c", HandlerSpec("a", "b:c", "")),  # split once, as MMS
    ],
)
def test_parse_handler(handler, spec):
    assert parse_handler(handler) == spec


@pytest.mark.parametrize("handler", ["", "   ", ":handle", "dir/", "dir/.py:fn"])
def test_parse_handler_refuses_strings_without_a_module(handler):
    with pytest.raises(HandlerError):
        parse_handler(handler)


class FakeContext:
    """Stands in for the MMS Context: load_handler only passes it through."""

    def __init__(self) -> None:
        self.calls: list[object] = []


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """``write_module(source, directory=None) -> (module name, directory)``; imports are undone afterwards."""
    before = set(sys.modules)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def write(source: str, directory: Path | None = None) -> tuple[str, Path]:
        name = f"_handler_mod_{next(_names)}"
        directory = directory or tmp_path
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
        return name, directory

    yield write
    for name in set(sys.modules) - before:
        if name.startswith("_handler_mod_"):
            del sys.modules[name]


FUNCTION_MODULE = """
    calls = []

    def handle(data, context):
        calls.append((data, context))
        return None if data is None else [len(data)]

    def other(data, context):
        calls.append(("other", data, context))
        return ["other"]
"""


def test_module_with_handle_function(write_module, monkeypatch):
    name, directory = write_module(FUNCTION_MODULE)
    monkeypatch.syspath_prepend(str(directory))
    context = FakeContext()
    handle = load_handler(name, context)
    module = sys.modules[name]
    assert module.calls == [(None, context)]  # the function form initializes with (None, context)
    assert handle([{"body": b"x"}], context) == [1]


def test_module_colon_function(write_module, monkeypatch):
    name, directory = write_module(FUNCTION_MODULE)
    monkeypatch.syspath_prepend(str(directory))
    context = FakeContext()
    handle = load_handler(f"{name}:other", context)
    assert sys.modules[name].calls == [("other", None, context)]
    assert handle([{}], context) == ["other"]


def test_path_to_file_py_colon_function(write_module, tmp_path):
    # Not on sys.path: the directory part of the handler string puts it there.
    name, directory = write_module(FUNCTION_MODULE, tmp_path / "path" / "to")
    context = FakeContext()
    handle = load_handler(f"{directory}/{name}.py:other", context)
    assert str(directory) in sys.path
    assert handle([{}], context) == ["other"]


def test_relative_path_is_resolved_against_the_working_directory(write_module, tmp_path, monkeypatch):
    name, _ = write_module(FUNCTION_MODULE, tmp_path / "code")
    monkeypatch.chdir(tmp_path)
    load_handler(f"code/{name}.py:handle", FakeContext())
    assert str(tmp_path / "code") in sys.path


def test_missing_function_is_an_error(write_module, monkeypatch):
    name, directory = write_module(FUNCTION_MODULE)
    monkeypatch.syspath_prepend(str(directory))
    with pytest.raises(HandlerError, match="nope"):
        load_handler(f"{name}:nope", FakeContext())


def test_function_that_is_not_callable_is_an_error(write_module, monkeypatch):
    name, directory = write_module("handle = 42\n")
    monkeypatch.syspath_prepend(str(directory))
    with pytest.raises(HandlerError):
        load_handler(name, FakeContext())


def test_function_form_init_failure_propagates(write_module, monkeypatch):
    name, directory = write_module("""
        def handle(data, context):
            if data is None:
                raise RuntimeError("cannot load")
            return data
    """)
    monkeypatch.syspath_prepend(str(directory))
    with pytest.raises(RuntimeError, match="cannot load"):
        load_handler(name, FakeContext())


ONE_CLASS = """
    from collections import OrderedDict  # an imported class does not count

    class Service:
        def __init__(self):
            self.initialized_with = None

        def initialize(self, context):
            self.initialized_with = context
            context.calls.append("initialize")

        def handle(self, data, context):
            return [self.initialized_with is context] * len(data)
"""


def test_module_with_one_class_is_instantiated_and_initialized(write_module, monkeypatch):
    name, directory = write_module(ONE_CLASS)
    monkeypatch.syspath_prepend(str(directory))
    context = FakeContext()
    handle = load_handler(name, context)
    assert context.calls == ["initialize"]
    assert handle([{}, {}], context) == [True, True]


def test_module_with_two_classes_is_an_error(write_module, monkeypatch):
    name, directory = write_module("""
        class A:
            def initialize(self, context): pass
            def handle(self, data, context): return data

        class B(A):
            pass
    """)
    monkeypatch.syspath_prepend(str(directory))
    with pytest.raises(HandlerError, match="Expected only one class") as info:
        load_handler(name, FakeContext())
    assert "A" in str(info.value) and "B" in str(info.value)


def test_module_with_no_class_and_no_handle_is_an_error(write_module, monkeypatch):
    name, directory = write_module("x = 1\n")
    monkeypatch.syspath_prepend(str(directory))
    with pytest.raises(HandlerError, match="Expected only one class"):
        load_handler(name, FakeContext())


def test_class_without_initialize_is_an_error(write_module, monkeypatch):
    name, directory = write_module("""
        class Service:
            def handle(self, data, context):
                return data
    """)
    monkeypatch.syspath_prepend(str(directory))
    with pytest.raises(HandlerError, match="initialize"):
        load_handler(name, FakeContext())


def test_initialize_failure_fails_the_load(write_module, monkeypatch):
    # Deliberate difference from MMS (which logs and serves anyway): a model that cannot load is not healthy.
    name, directory = write_module("""
        class Service:
            def initialize(self, context):
                raise ValueError("model file missing")

            def handle(self, data, context):
                return data
    """)
    monkeypatch.syspath_prepend(str(directory))
    with pytest.raises(ValueError, match="model file missing"):
        load_handler(name, FakeContext())


def test_import_error_propagates(tmp_path):
    with pytest.raises(ImportError):
        load_handler("_handler_mod_that_does_not_exist", FakeContext())


def test_dotted_package_module(tmp_path, monkeypatch):
    package = tmp_path / "_handler_pkg_dotted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "service.py").write_text("def handle(data, context):\n    return data\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        handle = load_handler("_handler_pkg_dotted.service", FakeContext())
        assert handle([1], None) == [1]
    finally:
        for name in [n for n in sys.modules if n.startswith("_handler_pkg_dotted")]:
            del sys.modules[name]


def test_default_handler_service_resolves_to_its_class(tmp_path):
    # Class form with the toolkit's own handler service: initialize runs the transformer, which
    # loads the user module from the model dir; a model dir without code uses default model_fn,
    # which raises, so the load fails loudly.
    from sagemaker_inference.context import Context

    context = Context("model", str(tmp_path), None, 1, None, "test")
    with pytest.raises(Exception):  # noqa: B017 - whichever error default_model_fn raises
        load_handler("sagemaker_inference.default_handler_service", context)
