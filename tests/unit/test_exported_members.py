"""The upstream 1.10.1 public surface, and the names downstream containers import or patch."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

UPSTREAM_MEMBERS = {
    "content_types": ["JSON", "CSV", "OCTET_STREAM", "ANY", "NPY", "NPZ", "UTF8_TYPES"],
    "parameters": [
        "BASE_PATH_ENV", "USER_PROGRAM_ENV", "LOG_LEVEL_ENV", "DEFAULT_INVOCATIONS_ACCEPT_ENV",
        "MODEL_SERVER_WORKERS_ENV", "MODEL_SERVER_TIMEOUT_ENV", "MODEL_SERVER_TIMEOUT_SECONDS_ENV",
        "MODEL_SERVER_VMARGS", "STARTUP_TIMEOUT_ENV", "BIND_TO_PORT_ENV", "SAFE_PORT_RANGE_ENV",
        "MULTI_MODEL_ENV", "MAX_REQUEST_SIZE",
    ],
    "logging": ["configure_logger", "get_logger"],
    "utils": ["CONTENT_TYPE_REGEX", "read_file", "write_file", "retrieve_content_type_header", "parse_accept",
              "remove_crlf"],
    "errors": ["UnsupportedFormatError", "BaseInferenceToolkitError", "GenericInferenceToolkitError"],
    "decoder": ["_json_to_numpy", "_csv_to_numpy", "_npy_to_numpy", "_npz_to_sparse", "_decoder_map", "decode"],
    "encoder": ["_array_to_json", "_array_to_npy", "_array_to_csv", "_encoder_map", "SUPPORTED_CONTENT_TYPES",
                "encode"],
    "environment": [
        "logger", "DEFAULT_MODULE_NAME", "DEFAULT_MODEL_SERVER_TIMEOUT", "DEFAULT_STARTUP_TIMEOUT",
        "DEFAULT_HTTP_PORT", "DEFAULT_VMARGS", "DEFAULT_MAX_REQUEST_SIZE", "SAGEMAKER_BASE_PATH", "base_dir",
        "model_dir", "code_dir", "Environment",
    ],
    "default_inference_handler": ["DefaultInferenceHandler"],
    "transformer": ["Transformer", "find_spec", "importlib", "BaseInferenceToolkitError",
                    "GenericInferenceToolkitError"],
    "default_handler_service": ["DefaultHandlerService", "PYTHON_PATH_ENV", "Transformer"],
}  # fmt: skip

SIGNATURES = {
    ("utils", "read_file"): "(path, mode='r')",
    ("utils", "write_file"): "(path, data, mode='w')",
    ("decoder", "decode"): "(obj, content_type)",
    ("decoder", "_json_to_numpy"): "(string_like, dtype=None)",
    ("decoder", "_csv_to_numpy"): "(string_like, dtype=None)",
    ("encoder", "encode"): "(array_like, content_type)",
    ("errors", "UnsupportedFormatError"): "(content_type, **kwargs)",
    ("errors", "BaseInferenceToolkitError"): "(status_code, message, phrase)",
    ("errors", "GenericInferenceToolkitError"): "(status_code, message=None, phrase=None)",
    ("transformer", "Transformer"): "(default_inference_handler=None)",
    ("default_handler_service", "DefaultHandlerService"): "(transformer=None)",
}


@pytest.mark.parametrize(("module", "names"), sorted(UPSTREAM_MEMBERS.items()))
def test_upstream_members_exist(module, names):
    mod = importlib.import_module(f"sagemaker_inference.{module}")
    assert [name for name in names if not hasattr(mod, name)] == []


@pytest.mark.parametrize(("where", "expected"), sorted(SIGNATURES.items()))
def test_signatures(where, expected):
    obj = getattr(importlib.import_module(f"sagemaker_inference.{where[0]}"), where[1])
    params = inspect.signature(obj).parameters.values()
    assert "(" + ", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in params) + ")" == expected


def test_method_signatures():
    from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
    from sagemaker_inference.transformer import Transformer

    def sig(func):
        return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]

    assert sig(DefaultInferenceHandler.default_input_fn) == [
        ("self", inspect.Parameter.empty), ("input_data", inspect.Parameter.empty),
        ("content_type", inspect.Parameter.empty), ("context", None),
    ]  # fmt: skip
    assert [n for n, _ in sig(Transformer._default_transform_fn)] == [
        "self", "model", "input_data", "content_type", "accept", "context"
    ]  # fmt: skip
    assert [n for n, _ in sig(Transformer.handle_error)] == ["context", "inference_exception", "trace"]
    assert isinstance(inspect.getattr_static(Transformer, "handle_error"), staticmethod)
    assert [n for n, _ in sig(Transformer._run_handler_function)] == ["self", "func", "argv"]


DOWNSTREAM_PATCH_TARGETS = [
    "sagemaker_inference.transformer.Transformer",
    "sagemaker_inference.transformer.Transformer._run_handler_function",
    "sagemaker_inference.transformer.Transformer.validate_and_initialize",
    "sagemaker_inference.transformer.Transformer._validate_user_module_and_set_functions",
    "sagemaker_inference.transformer.Transformer._default_transform_fn",
    "sagemaker_inference.transformer.find_spec",
    "importlib.import_module",
    "sagemaker_inference.utils.retrieve_content_type_header",
    "sagemaker_inference.utils.read_file",
    "sagemaker_inference.utils.write_file",
    "sagemaker_inference.environment.Environment",
    "sagemaker_inference.decoder.decode",
    "sagemaker_inference.decoder._decoder_map",
    "sagemaker_inference.encoder.encode",
    "sagemaker_inference.encoder._encoder_map",
    "sagemaker_inference.default_handler_service.DefaultHandlerService.initialize",
]


@pytest.mark.parametrize("target", DOWNSTREAM_PATCH_TARGETS)
def test_downstream_patch_targets_resolve(target):
    from unittest import mock

    with mock.patch(target):
        pass


def test_context_members():
    from sagemaker_inference import context

    for name in ["Context", "RequestProcessor", "MetricsStore", "Metric", "Dimension", "PredictionException"]:
        assert hasattr(context, name)
    for name in [
        "system_properties", "request_processor", "metrics", "get_request_id", "get_request_header",
        "get_all_request_header", "set_response_content_type", "get_response_content_type", "get_response_status",
        "set_response_status", "set_all_response_status", "get_response_headers", "set_response_header",
        "_begin_batch", "_metric_lines",
    ]:  # fmt: skip
        assert hasattr(context.Context, name), name


def test_package_resources_exist():
    from importlib import resources

    etc = resources.files("sagemaker_inference") / "etc"
    for name in ["default-mms.properties", "mme-mms.properties", "log4j2.xml"]:
        assert (etc / name).is_file()
    assert "decode_input_request=false" in (etc / "default-mms.properties").read_text()
    assert (resources.files("sagemaker_inference") / "py.typed").is_file()


def test_importing_the_handler_path_imports_no_heavy_library():
    code = (
        "import sys, sagemaker_inference.default_handler_service, sagemaker_inference.decoder, "
        "sagemaker_inference.encoder, sagemaker_inference.context, sagemaker_inference.environment;"
        "print(sorted(m for m in ('numpy', 'scipy', 'boto3', 'torch', 'inspect') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
