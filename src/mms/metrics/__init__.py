"""``mms.metrics``: the metric classes handlers use through ``context.metrics``."""

from mms.metrics import dimension, metric, metric_encoder, metrics_store, unit

__all__ = ["dimension", "metric", "metric_encoder", "metrics_store", "unit"]
