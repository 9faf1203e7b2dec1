"""MMS properties and CLI -> ServerConfig (sagemaker_inference.mms_compat.properties)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sagemaker_inference.mms_compat.properties import (
    effective_properties,
    parse_properties,
    server_config,
    startup_models,
)
from sagemaker_inference.server.config import ConfigError


def test_parse_properties_last_key_wins_comments_and_separators() -> None:
    text = "# comment\n! also\nload_models=ALL\n  a = 1 \nb: two\nc 3\nload_models=x=/m\nempty=\n"
    assert parse_properties(text) == {"load_models": "x=/m", "a": "1", "b": "two", "c": "3", "empty": ""}


def test_precedence_file_then_cli_then_mms_env_when_enabled() -> None:
    file_props = {"enable_envvars_config": "true", "model_store": "/file", "job_queue_size": "5"}
    env = {"MMS_JOB_QUEUE_SIZE": "7", "MMS_CONFIG_FILE": "/x"}
    props = effective_properties(file_props, env, model_store="/cli", models=["a=/m", "b=/n"])
    assert props["model_store"] == "/cli" and props["load_models"] == "a=/m,b=/n"
    assert props["job_queue_size"] == "7" and "config_file" not in props
    assert effective_properties({"job_queue_size": "5"}, env)["job_queue_size"] == "5"  # not enabled: file wins


def test_env_references_are_expanded_and_unset_ones_refused() -> None:
    props = effective_properties({"default_service_handler": "$$SAGEMAKER_HANDLER$$"}, {"SAGEMAKER_HANDLER": "h.m"})
    assert props["default_service_handler"] == "h.m"
    with pytest.raises(ConfigError, match="Invalid Environment Variable SAGEMAKER_HANDLER"):
        effective_properties({"default_service_handler": "$$SAGEMAKER_HANDLER$$"}, {})


def test_toolkit_properties_map_onto_the_single_model_server(tmp_path: Path) -> None:
    props = {"inference_address": "http://0.0.0.0:9123", "management_address": "http://0.0.0.0:9123",
             "default_workers_per_model": "3", "default_service_handler": "my.handler", "job_queue_size": "9",
             "max_request_size": "1000", "default_response_timeout": "45", "load_models": f"m={tmp_path}",
             "vmargs": "-Xmx1g", "decode_input_request": "false", "enable_envvars_config": "true"}
    translation = server_config(props, {"SAGEMAKER_MODEL_SERVER_WORKERS": "8"})
    config = translation.config
    assert (config.host, config.port, config.workers, config.handler) == ("0.0.0.0", 9123, 3, "my.handler")
    assert (config.job_queue_size, config.max_request_size, config.response_timeout) == (9, 1000, 45.0)
    assert (config.multi_model, config.model_dir, config.model_name) == (False, str(tmp_path), "m")
    assert translation.notes == ()


def test_timeout_seconds_key_wins() -> None:
    props = {"default_response_timeout": "45", "default_response_timeout_seconds": "7"}
    assert server_config(props, {}).config.response_timeout == 7.0


def test_no_startup_model_is_multi_model_and_a_store_of_slash_keeps_the_safe_root() -> None:
    config = server_config({"model_store": "/"}, {"SAGEMAKER_BASE_DIR": "/srv/ml"}).config
    assert config.multi_model and config.model_root == "/srv/ml/models"
    assert server_config({"model_store": "/data/models/"}, {}).config.model_root == "/data/models"
    assert server_config({"model_store": "/data"}, {"SAGEMAKER_MODEL_ROOT": "/r"}).config.model_root == "/r"


def test_no_address_is_mms_default_host_with_the_sagemaker_port() -> None:
    config = server_config({}, {"SAGEMAKER_BIND_TO_PORT": "8099"}).config
    assert (config.host, config.port) == ("127.0.0.1", 8099)


def test_notes_name_unknown_unsupported_and_split_management(tmp_path: Path) -> None:
    props = {"inference_address": "http://0.0.0.0:8080", "management_address": "http://0.0.0.0:8081",
             "cors_allowed_origin": "*", "service_envelope": "json", "decode_input_request": "true"}
    notes = server_config(props, {}).notes
    assert any("management_address" in n for n in notes)
    assert "cors_allowed_origin is ignored: no CORS headers are sent" in notes
    assert "unknown MMS property 'service_envelope' ignored" in notes
    assert any("decode_input_request" in n for n in notes)


def test_load_models_all_takes_manifest_name_and_handler(tmp_path: Path) -> None:
    folder = tmp_path / "exported"
    (folder / "MAR-INF").mkdir(parents=True)
    (folder / "MAR-INF" / "MANIFEST.json").write_text(json.dumps({"model": {"modelName": "named", "handler": "h"}}))
    (tmp_path / ".hidden").mkdir()
    props = {"model_store": str(tmp_path), "load_models": "ALL", "default_service_handler": "default.h"}
    assert [m.name for m in startup_models(props)] == ["named"]
    config = server_config(props, {}).config
    assert (config.model_name, config.handler, config.model_dir) == ("named", "h", str(folder))


@pytest.mark.parametrize(("props", "message"), [
    ({"inference_address": "unix:/tmp/s"}, "only http://host:port"),
    ({"inference_address": "https://0.0.0.0:8443"}, "TLS is not served"),
    ({"inference_address": "http://0.0.0.0:notaport"}, "invalid port"),
    ({"job_queue_size": "0"}, "job_queue_size='0': must be at least 1"),
    ({"load_models": "a=/,a=/"}, "a model name is used twice"),
    ({"load_models": "a b=/"}, "invalid model name 'a b'"),
    ({"load_models": "a=/definitely/not/here"}, "is not a directory"),
])
def test_bad_values_name_the_key(props: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        server_config(props, {})


def test_several_startup_models_are_multi_model_with_them_loaded(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "MAR-INF").mkdir(parents=True)
    (tmp_path / "b" / "MAR-INF" / "MANIFEST.json").write_text(json.dumps({"model": {"handler": "b_handler"}}))
    props = {"model_store": str(tmp_path), "load_models": "one=a,two=b"}
    config = server_config(props, {}).config
    assert config.multi_model and config.model_root == str(tmp_path)
    assert config.startup_models == (("one", str(tmp_path / "a"), ""), ("two", str(tmp_path / "b"), "b_handler"))
