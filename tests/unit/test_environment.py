from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sagemaker_inference import environment


@pytest.fixture
def clean_env(monkeypatch):
    for name in [
        "SAGEMAKER_PROGRAM",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS",
        "SAGEMAKER_MODEL_SERVER_WORKERS",
        "SAGEMAKER_STARTUP_TIMEOUT",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",
        "SAGEMAKER_BIND_TO_PORT",
        "SAGEMAKER_SAFE_PORT_RANGE",
        "SAGEMAKER_MODEL_SERVER_VMARGS",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB",
    ]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(clean_env):
    env = environment.Environment()
    assert env.module_name == "inference"
    assert env.model_server_timeout == 60
    assert env.model_server_timeout_seconds is None
    assert env.model_server_workers is None
    assert env.startup_timeout == 600
    assert env.default_accept == "application/json"
    assert env.inference_http_port == env.management_http_port == "8080"
    assert env.safe_port_range is None
    assert env.vmargs == "-XX:-UseContainerSupport"
    assert env.max_request_size is None


def test_values_from_environment(clean_env):
    clean_env.setenv("SAGEMAKER_PROGRAM", "program")
    clean_env.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "5")
    clean_env.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS", "7")
    clean_env.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "8")
    clean_env.setenv("SAGEMAKER_BIND_TO_PORT", "9000")
    clean_env.setenv("SAGEMAKER_MAX_PAYLOAD_IN_MB", "6")
    env = environment.Environment()
    assert env.module_name == "program"
    assert (env.model_server_timeout, env.model_server_timeout_seconds) == (5, 7)
    assert env.model_server_workers == "8"
    assert env.inference_http_port == env.management_http_port == "9000"
    assert env.max_request_size == 6 * 1024 * 1024


def test_bad_integers_fail_at_construction_except_max_request_size(clean_env):
    clean_env.setenv("SAGEMAKER_MAX_PAYLOAD_IN_MB", "lots")
    env = environment.Environment()
    with pytest.raises(ValueError):
        env.max_request_size  # noqa: B018
    clean_env.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "soon")
    with pytest.raises(ValueError):
        environment.Environment()


def test_private_workers_attribute_is_read_at_access_time(clean_env):
    env = environment.Environment()
    env._model_server_workers = "3"
    assert env.model_server_workers == "3"


@pytest.mark.parametrize(("value", "expected"), [("inference.py", "inference"), ("a/b.py", "a/b"), ("", "")])
def test_parse_module_name(value, expected):
    assert environment.Environment._parse_module_name(value) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["/opt/ml", "/opt/ml/model", "/opt/ml/model/code"]),
        ({"SAGEMAKER_BASE_DIR": "/base"}, ["/base", "/base/model", "/base/model/code"]),
        ({"SAGEMAKER_MULTI_MODEL": "true"}, ["/opt/ml", "/opt/ml/models", "/opt/ml/models/code"]),
        ({"SAGEMAKER_MULTI_MODEL": "True"}, ["/opt/ml", "/opt/ml/model", "/opt/ml/model/code"]),
    ],
)
def test_import_time_paths(env, expected):
    code = (
        "import json; from sagemaker_inference import environment as e;"
        "print(json.dumps([e.base_dir, e.model_dir, e.code_dir]))"
    )
    base = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == expected


@pytest.mark.parametrize(("name", "value", "attribute", "expected"), [
    ("SAGEMAKER_STARTUP_TIMEOUT", "600.0", "startup_timeout", 600),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "30.0", "model_server_timeout", 30),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "1.5", "model_server_timeout", 1.5),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "", "model_server_timeout", 60),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS", "", "model_server_timeout_seconds", None),
    ("SAGEMAKER_STARTUP_TIMEOUT", " ", "startup_timeout", 600),
])
def test_numbers_follow_the_servers_rules(clean_env, name, value, attribute, expected):
    clean_env.setenv(name, value)
    assert getattr(environment.Environment(), attribute) == expected


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "²", "٣", "soon"])
def test_bad_numbers_raise_a_value_error_naming_the_variable(clean_env, value):
    clean_env.setenv("SAGEMAKER_STARTUP_TIMEOUT", value)
    with pytest.raises(ValueError, match=f"SAGEMAKER_STARTUP_TIMEOUT={value!r}"):
        environment.Environment()
