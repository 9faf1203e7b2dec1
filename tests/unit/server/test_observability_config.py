"""Observability settings in ``ServerConfig`` and the EMF quantile estimate."""

from __future__ import annotations

import pytest

from sagemaker_inference.server.config import ConfigError, ServerConfig, tracing_configured
from sagemaker_inference.server.observability.emf import quantile


def test_defaults():
    config = ServerConfig.from_env({})
    assert (config.metrics, config.metrics_port, config.emf, config.emf_interval, config.emf_namespace,
            config.log_format, config.tracing) == (True, None, False, 60.0, "SageMakerInference", "text", False)


def test_from_env():
    config = ServerConfig.from_env({"SAGEMAKER_METRICS": "false", "SAGEMAKER_METRICS_PORT": "9100",
                                    "SAGEMAKER_LOG_FORMAT": "JSON", "SAGEMAKER_SAFE_PORT_RANGE": "9000-9999"})
    assert (config.metrics, config.metrics_port, config.log_format, config.safe_port_range) == (
        False, 9100, "json", "9000-9999")
    emf = ServerConfig.from_env({"SAGEMAKER_METRICS_EMF": "true", "SAGEMAKER_METRICS_EMF_INTERVAL": "10",
                                 "SAGEMAKER_METRICS_EMF_NAMESPACE": "Team/Models"})
    assert (emf.emf, emf.emf_interval, emf.emf_namespace) == (True, 10.0, "Team/Models")


@pytest.mark.parametrize("environ, flag, needle", [
    ({"SAGEMAKER_SAFE_PORT_RANGE": "9000-9010"}, {"metrics_port": 8000}, "SAGEMAKER_SAFE_PORT_RANGE 9000-9010"),
    ({"SAGEMAKER_SAFE_PORT_RANGE": "9010-9000"}, {"metrics_port": 9005}, "first port is above the last"),
    ({"SAGEMAKER_SAFE_PORT_RANGE": "9000"}, {"metrics_port": 9000}, "expected a port range"),
    ({"SAGEMAKER_METRICS_PORT": "70000"}, {}, "SAGEMAKER_METRICS_PORT"),
    ({}, {"metrics_port": 8080}, "is the serving port"),
    ({"SAGEMAKER_LOG_FORMAT": "xml"}, {}, "expected text or json"),
    ({}, {"log_format": "xml"}, "--log-format"),
    ({"SAGEMAKER_METRICS_EMF": "true", "SAGEMAKER_METRICS": "false"}, {}, "needs metrics on"),
    ({"SAGEMAKER_METRICS_EMF_INTERVAL": "0"}, {}, "SAGEMAKER_METRICS_EMF_INTERVAL"),
    ({"SAGEMAKER_METRICS_EMF_NAMESPACE": "x" * 256}, {}, "SAGEMAKER_METRICS_EMF_NAMESPACE"),
])
def test_bad_values_name_the_setting(environ, flag, needle):
    with pytest.raises(ConfigError, match=needle):
        ServerConfig.from_env(environ, **flag)


def test_a_safe_port_range_we_cannot_read_matters_only_with_a_metrics_port():
    assert ServerConfig.from_env({"SAGEMAKER_SAFE_PORT_RANGE": "whatever"}).safe_port_range == "whatever"


def test_metrics_port_inside_the_safe_range():
    config = ServerConfig.from_env({"SAGEMAKER_SAFE_PORT_RANGE": "9000-9010"}, metrics_port=9010)
    assert config.metrics_port == 9010


@pytest.mark.parametrize("environ, expected", [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "x"}, False),  # naming a service configures no exporter
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
])
def test_tracing_is_on_only_when_opentelemetry_is_configured(environ, expected):
    assert tracing_configured(environ) is expected
    assert ServerConfig.from_env(environ).tracing is expected


def test_quantile_interpolates_within_a_bucket():
    bounds = (0.1, 0.2, 0.4)
    assert quantile(0.5, bounds, [0, 0, 0, 0]) is None
    assert quantile(0.5, bounds, [10, 0, 0, 0]) == pytest.approx(0.05)
    assert quantile(0.5, bounds, [0, 4, 4, 0]) == pytest.approx(0.2)
    assert quantile(0.75, bounds, [0, 4, 4, 0]) == pytest.approx(0.3)
    assert quantile(0.99, bounds, [0, 0, 0, 5]) == 0.4  # beyond the last bound: the last bound
