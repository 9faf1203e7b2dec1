"""ServerConfig.from_env: every variable and alias, precedence, CLI overrides, bad values."""

from __future__ import annotations

import pytest

from sagemaker_inference.server.cli import config_from_args
from sagemaker_inference.server.config import (
    DEFAULT_HANDLER,
    DEFAULT_MAX_REQUEST_SIZE,
    MIB,
    ConfigError,
    ServerConfig,
    available_cpus,
    parse_log_level,
)


def test_defaults_match_upstream():
    config = ServerConfig.from_env({})
    assert config.host == "0.0.0.0"
    assert config.port == 8080
    assert config.base_dir == "/opt/ml"
    assert config.model_dir == "/opt/ml/model"
    assert config.model_root == "/opt/ml/models"
    assert config.model_name == "model"
    assert config.handler == DEFAULT_HANDLER
    assert config.response_timeout == 60.0
    assert config.startup_timeout == 600.0
    assert config.max_request_size == DEFAULT_MAX_REQUEST_SIZE == 6553500
    assert config.batch_size == 1
    assert config.max_batch_delay == 100.0
    assert config.multi_model is False
    assert config.log_level == 20
    assert config.access_log is False
    assert config.workers == available_cpus() >= 1


def test_config_is_frozen():
    config = ServerConfig.from_env({})
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"SAGEMAKER_BIND_TO_PORT": "9123"}, "port", 9123),
        ({"SAGEMAKER_BIND_TO_PORT": " 9123 "}, "port", 9123),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}, "workers", 3),
        ({"MMS_DEFAULT_WORKERS_PER_MODEL": "4"}, "workers", 4),
        ({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "7"}, "response_timeout", 7.0),
        ({"SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "2.5"}, "response_timeout", 2.5),
        ({"MMS_DEFAULT_RESPONSE_TIMEOUT_SECONDS": "8"}, "response_timeout", 8.0),
        ({"TS_DEFAULT_RESPONSE_TIMEOUT": "9"}, "response_timeout", 9.0),
        ({"SAGEMAKER_STARTUP_TIMEOUT": "30"}, "startup_timeout", 30.0),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "2"}, "max_request_size", 2 * MIB),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.5"}, "max_request_size", MIB // 2),
        ({"SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB": "256"}, "max_buffered_payload", 256 * MIB),
        ({"SAGEMAKER_REQUEST_READ_TIMEOUT": "2.5"}, "request_read_timeout", 2.5),
        ({"SAGEMAKER_MAX_REQUEST_SIZE": "12345"}, "max_request_size", 12345),
        ({"MMS_MAX_REQUEST_SIZE": "2345"}, "max_request_size", 2345),
        ({"TS_MAX_REQUEST_SIZE": "345"}, "max_request_size", 345),
        ({"SAGEMAKER_TS_BATCH_SIZE": "8"}, "batch_size", 8),
        ({"SAGEMAKER_BATCH_SIZE": "6"}, "batch_size", 6),
        ({"MMS_BATCH_SIZE": "5"}, "batch_size", 5),
        ({"SAGEMAKER_TS_MAX_BATCH_DELAY": "20"}, "max_batch_delay", 20.0),
        ({"SAGEMAKER_MAX_BATCH_DELAY": "30"}, "max_batch_delay", 30.0),
        ({"MMS_MAX_BATCH_DELAY": "40"}, "max_batch_delay", 40.0),
        ({"SAGEMAKER_MODEL_JOB_QUEUE_SIZE": "50"}, "job_queue_size", 50),
        ({"MMS_JOB_QUEUE_SIZE": "60"}, "job_queue_size", 60),
        ({"SAGEMAKER_MULTI_MODEL": "true"}, "multi_model", True),
        ({"SAGEMAKER_MULTI_MODEL": "TRUE"}, "multi_model", False),  # exactly "true", as upstream
        ({"SAGEMAKER_MULTI_MODEL": "false"}, "multi_model", False),
        ({"SAGEMAKER_MULTI_MODEL": "1"}, "multi_model", False),  # upstream compares with "true" only
        ({"SAGEMAKER_HANDLER": " my_handler:handle "}, "handler", "my_handler:handle"),
        ({"SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}, "log_level", 20),
        ({"SAGEMAKER_CONTAINER_LOG_LEVEL": "debug"}, "log_level", 10),
        ({"SAGEMAKER_CONTAINER_LOG_LEVEL": "WARN"}, "log_level", 30),
        ({"SAGEMAKER_ACCESS_LOG": "true"}, "access_log", True),
        ({"SAGEMAKER_ACCESS_LOG": "off"}, "access_log", False),
        ({"SAGEMAKER_MODEL_MEMORY_LIMIT_MB": "512"}, "memory_limit_mb", 512),
        ({"SAGEMAKER_MME_LRU_EVICTION": "yes"}, "mme_lru_eviction", True),
    ],
)
def test_each_variable_is_read(env, field, expected):
    assert getattr(ServerConfig.from_env(env), field) == expected


def test_base_dir_moves_the_model_dirs():
    config = ServerConfig.from_env({"SAGEMAKER_BASE_DIR": "/srv/ml"})
    assert (config.base_dir, config.model_dir, config.model_root) == ("/srv/ml", "/srv/ml/model", "/srv/ml/models")


def test_multi_model_serves_the_models_dir():
    config = ServerConfig.from_env({"SAGEMAKER_BASE_DIR": "/srv/ml", "SAGEMAKER_MULTI_MODEL": "true"})
    assert config.model_dir == "/srv/ml/models"


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        # improvements.md: TIMEOUT_SECONDS wins when set; both are seconds.
        ({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "60", "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "5"},
         "response_timeout", 5.0),
        ({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "60", "MMS_DEFAULT_RESPONSE_TIMEOUT_SECONDS": "5"},
         "response_timeout", 60.0),
        # The SageMaker variable in MB wins over every byte-valued alias.
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1", "SAGEMAKER_MAX_REQUEST_SIZE": "5", "MMS_MAX_REQUEST_SIZE": "6"},
         "max_request_size", MIB),
        ({"SAGEMAKER_MAX_REQUEST_SIZE": "5", "MMS_MAX_REQUEST_SIZE": "6"}, "max_request_size", 5),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "MMS_DEFAULT_WORKERS_PER_MODEL": "7"}, "workers", 2),
        ({"SAGEMAKER_TS_BATCH_SIZE": "3", "MMS_BATCH_SIZE": "9"}, "batch_size", 3),
        # An empty value counts as unset: the next alias (or the default) applies.
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "", "MMS_DEFAULT_WORKERS_PER_MODEL": "7"}, "workers", 7),
        ({"SAGEMAKER_BIND_TO_PORT": "  "}, "port", 8080),
    ],
)
def test_precedence(env, field, expected):
    assert getattr(ServerConfig.from_env(env), field) == expected


def test_overrides_win_over_env_and_none_means_unset():
    env = {"SAGEMAKER_BIND_TO_PORT": "9000", "SAGEMAKER_MODEL_SERVER_WORKERS": "3"}
    config = ServerConfig.from_env(env, port=9001, workers=None)
    assert (config.port, config.workers) == (9001, 3)


def test_vmargs_are_accepted_and_ignored():
    config = ServerConfig.from_env({"SAGEMAKER_MODEL_SERVER_VMARGS": "-Xmx4g -XX:-UseContainerSupport"})
    assert config == ServerConfig.from_env({})


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT"),
        ({"SAGEMAKER_BIND_TO_PORT": "70000"}, "SAGEMAKER_BIND_TO_PORT"),
        ({"SAGEMAKER_BIND_TO_PORT": "-1"}, "SAGEMAKER_BIND_TO_PORT"),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "SAGEMAKER_MODEL_SERVER_WORKERS"),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "two"}, "SAGEMAKER_MODEL_SERVER_WORKERS"),
        ({"MMS_DEFAULT_WORKERS_PER_MODEL": "1.5"}, "MMS_DEFAULT_WORKERS_PER_MODEL"),
        ({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "soon"}, "SAGEMAKER_MODEL_SERVER_TIMEOUT"),
        ({"SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "0"}, "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0"}, "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "nan"}, "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
        ({"SAGEMAKER_REQUEST_READ_TIMEOUT": "0"}, "SAGEMAKER_REQUEST_READ_TIMEOUT"),
        ({"MMS_MAX_REQUEST_SIZE": "big"}, "MMS_MAX_REQUEST_SIZE"),
        ({"SAGEMAKER_TS_BATCH_SIZE": "0"}, "SAGEMAKER_TS_BATCH_SIZE"),
        ({"SAGEMAKER_TS_MAX_BATCH_DELAY": "-5"}, "SAGEMAKER_TS_MAX_BATCH_DELAY"),
        ({"SAGEMAKER_CONTAINER_LOG_LEVEL": "loud"}, "SAGEMAKER_CONTAINER_LOG_LEVEL"),
        ({"SAGEMAKER_ACCESS_LOG": "maybe"}, "SAGEMAKER_ACCESS_LOG"),
        ({"SAGEMAKER_STARTUP_TIMEOUT": "-1"}, "SAGEMAKER_STARTUP_TIMEOUT"),
    ],
)
def test_bad_values_name_the_variable_and_value(env, variable):
    with pytest.raises(ConfigError) as info:
        ServerConfig.from_env(env)
    message = str(info.value)
    assert variable in message
    assert repr(env[variable]) in message


def test_buffered_payload_below_the_largest_request_is_refused():
    with pytest.raises(ConfigError, match="SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB=1: must be at least the largest request"):
        ServerConfig.from_env({"SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB": "1", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2"})


def test_buffered_payload_default_is_derived_from_the_memory_limit():
    from sagemaker_inference.server.config import MAX_DEFAULT_BUFFERED, memory_limit

    config = ServerConfig.from_env({})
    limit = memory_limit()
    assert limit is not None and limit > 0
    assert config.max_buffered_payload == max(config.max_request_size, 64 * MIB, min(limit // 4, MAX_DEFAULT_BUFFERED))


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(("raw", "level"), [("info", 20), ("INFO", 20), ("warning", 30), ("error", 40),
                                             ("critical", 50), ("fatal", 50), ("10", 10), (" debug ", 10)])
def test_parse_log_level(raw, level):
    assert parse_log_level("X", raw) == level


# -- the CLI on top of the environment ----------------------------------------------------------


def test_cli_flags_win_over_env():
    env = {"SAGEMAKER_BIND_TO_PORT": "9000", "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
           "SAGEMAKER_MODEL_SERVER_TIMEOUT": "10", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "5",
           "SAGEMAKER_HANDLER": "env_handler", "SAGEMAKER_CONTAINER_LOG_LEVEL": "debug"}
    config = config_from_args(["serve", "--port", "9001", "--workers", "2", "--timeout", "4", "--max-payload-mb", "2",
                               "--handler", "cli_handler", "--log-level", "error", "--host", "127.0.0.1",
                               "--model-dir", "/tmp/m", "--batch-size", "4", "--max-batch-delay", "5",
                               "--access-log"], env)
    assert (config.port, config.workers, config.response_timeout, config.max_request_size) == (9001, 2, 4.0, 2 * MIB)
    assert (config.handler, config.log_level, config.host, config.model_dir) == ("cli_handler", 40, "127.0.0.1",
                                                                                 "/tmp/m")
    assert (config.batch_size, config.max_batch_delay, config.access_log) == (4, 5.0, True)


def test_cli_without_flags_uses_env():
    config = config_from_args(["serve"], {"SAGEMAKER_BIND_TO_PORT": "9000", "SAGEMAKER_MODEL_SERVER_WORKERS": "3"})
    assert (config.port, config.workers) == (9000, 3)


def test_cli_serve_is_the_default_command():
    assert config_from_args(["--port", "9002"], {}).port == 9002
    assert config_from_args([], {"SAGEMAKER_BIND_TO_PORT": "9003"}).port == 9003


def test_cli_example_serves_the_bundled_model():
    config = config_from_args(["serve", "--example"], {})
    assert config.model_dir.endswith("example_model")


def test_cli_multi_model_flag():
    config = config_from_args(["serve", "--multi-model"], {"SAGEMAKER_BASE_DIR": "/srv/ml"})
    assert config.multi_model is True
    assert config.model_root == "/srv/ml/models"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["serve", "--workers", "0"], "--workers"),
        (["serve", "--workers", "-2"], "--workers"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--timeout", "0"], "--timeout"),
        (["serve", "--batch-size", "0"], "--batch-size"),
        (["serve", "--max-batch-delay", "-1"], "--max-batch-delay"),
        (["serve", "--log-level", "loud"], "--log-level"),
    ],
)
def test_cli_bad_values_are_config_errors(argv, flag):
    with pytest.raises(ConfigError, match=flag):
        config_from_args(argv, {})
