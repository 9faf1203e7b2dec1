"""The MMS ``Context`` handed to handler services, with MMS's metrics API.

Same constructor, attributes and methods as Multi Model Server 1.1.11's ``mms.context``,
``mms.metrics`` and ``mms.service.PredictionException``, so handler services written for MMS
(``context.system_properties["model_dir"]``, ``context.request_processor[0]``,
``context.set_response_status(...)``, ``context.metrics.add_time(...)``) run unchanged.

One ``Context`` lives for the whole life of a worker. Per batch the worker calls
``_begin_batch(request_ids, headers)``, then ``handle(data, context)``, then reads each request's
outcome with ``get_response_status(idx)`` and ``get_response_headers(idx)`` and the metric lines
with ``_metric_lines()``. The ``MetricsStore`` of a batch is only created when something reads
``context.metrics``, so batches that record no metrics pay nothing for it.
"""

from __future__ import annotations

import socket
import time
from typing import Any

_UNITS: dict[str | None, str] = {
    "ms": "Milliseconds",
    "s": "Seconds",
    "percent": "Percent",
    "count": "Count",
    "MB": "Megabytes",
    "GB": "Gigabytes",
    "kB": "Kilobytes",
    "B": "Bytes",
    None: "unit",
}
_hostname: str | None = None


def _host() -> str:
    global _hostname
    if _hostname is None:
        _hostname = socket.gethostname()
    return _hostname


class PredictionException(Exception):
    """MMS's exception for a failed prediction: ``error_code`` becomes the HTTP status."""

    def __init__(self, message: str, error_code: int = 500) -> None:
        self.message = message
        self.error_code = error_code
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} : {self.error_code}"


class RequestProcessor:
    """Request headers of one request of a batch, and the response status/headers set for it."""

    __slots__ = ("_status_code", "_reason_phrase", "_response_header", "_request_header")

    def __init__(self, request_header: dict[str, Any]) -> None:
        self._status_code = 200
        self._reason_phrase: str | None = None
        self._response_header: dict[str, Any] = {}
        self._request_header = request_header

    def get_request_property(self, key: str) -> Any:
        return self._request_header.get(key)

    def get_request_properties(self) -> dict[str, Any]:
        return self._request_header

    def report_status(self, code: int, reason_phrase: str | None = None) -> None:
        self._status_code = code
        self._reason_phrase = reason_phrase

    def get_response_status_code(self) -> int:
        return self._status_code

    def get_response_status_phrase(self) -> str | None:
        return self._reason_phrase

    def add_response_property(self, key: str, value: Any) -> None:
        self._response_header[key] = value

    def get_response_headers(self) -> dict[str, Any]:
        return self._response_header

    def get_response_header(self, key: str) -> Any:
        return self._response_header.get(key)


class Context:
    """Model and worker information, plus the requests of the batch being handled."""

    def __init__(
        self, model_name: str, model_dir: str, manifest: Any, batch_size: int, gpu: int | None, mms_version: str
    ) -> None:
        self.model_name = model_name
        self.manifest = manifest
        self._system_properties = {
            "model_dir": model_dir,
            "gpu_id": gpu,
            "batch_size": batch_size,
            "server_name": "MMS",
            "server_version": mms_version,
        }
        self.request_ids: dict[int, str] | None = None
        self._request_processor: list[RequestProcessor] | None = None
        self._metrics: MetricsStore | None = None

    @property
    def system_properties(self) -> dict[str, Any]:
        return self._system_properties

    @property
    def request_processor(self) -> list[RequestProcessor] | None:
        return self._request_processor

    @request_processor.setter
    def request_processor(self, request_processor: list[RequestProcessor] | None) -> None:
        self._request_processor = request_processor

    @property
    def metrics(self) -> MetricsStore:
        if self._metrics is None:
            self._metrics = MetricsStore(self.request_ids, self.model_name)
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: MetricsStore | None) -> None:
        self._metrics = metrics

    def _begin_batch(self, request_ids: dict[int, str], headers: list[dict[str, Any]]) -> None:
        """Start a batch: one header dict and one request id per request, in batch order.

        Called by the worker before ``handle``; replaces the previous batch's request
        processors (and so its response statuses and headers) and metrics.
        """
        self.request_ids = request_ids
        self._request_processor = [RequestProcessor(h) for h in headers]
        self._metrics = None

    def _metric_lines(self) -> list[str]:
        """The batch's metrics in MMS's line format (without the ``[METRICS]`` prefix)."""
        if self._metrics is None:
            return []
        return [str(metric) for metric in self._metrics.store]

    def get_request_id(self, idx: int = 0) -> str | None:
        return self.request_ids.get(idx)  # type: ignore[union-attr]

    def get_request_header(self, idx: int, key: str) -> Any:
        return self._request_processor[idx].get_request_property(key)  # type: ignore[index]

    def get_all_request_header(self, idx: int) -> dict[str, Any]:
        return self._request_processor[idx].get_request_properties()  # type: ignore[index]

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.set_response_header(idx, "content-type", value)

    def get_response_content_type(self, idx: int) -> str | None:
        return self.get_response_headers(idx).get("content-type")

    def get_response_status(self, idx: int) -> tuple[int, str | None]:
        processor = self._request_processor[idx]  # type: ignore[index]
        return processor.get_response_status_code(), processor.get_response_status_phrase()

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        """Set the status of request ``idx``; does nothing outside a batch, as MMS."""
        if self._request_processor is not None and self._request_processor[idx] is not None:
            self._request_processor[idx].report_status(code, reason_phrase=phrase)

    def set_all_response_status(self, code: int = 200, phrase: str = "") -> None:
        for processor in self._request_processor:  # type: ignore[union-attr]
            processor.report_status(code, reason_phrase=phrase)

    def get_response_headers(self, idx: int) -> dict[str, Any]:
        return self._request_processor[idx].get_response_headers()  # type: ignore[index]

    def set_response_header(self, idx: int, key: str, value: Any) -> None:
        self._request_processor[idx].add_response_property(key, value)  # type: ignore[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as MMS


class Dimension:
    """A metric dimension, printed ``Name:value``."""

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value

    def __str__(self) -> str:
        return f"{self.name}:{self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {"Name": self.name, "Value": self.value}


class Metric:
    """One metric, printed in MMS's line format.

    ``<Name>.<Unit>:<value>|#<Dim>:<val>,...|#hostname:<host>,<unix_ts>[,<request_id>]``
    """

    def __init__(
        self,
        name: str,
        value: Any,
        unit: str | None,
        dimensions: list[Dimension],
        request_id: str | None = None,
        metric_method: str | None = None,
    ) -> None:
        self.name = name
        self.unit = _UNITS.get(unit, unit)
        self.metric_method = metric_method
        self.value = value
        self.dimensions = dimensions
        self.request_id = request_id

    def update(self, value: Any) -> None:
        if self.metric_method == "counter":
            self.value += value
        else:
            self.value = value

    def __str__(self) -> str:
        dims = ",".join(str(d) for d in self.dimensions)
        line = f"{self.name}.{self.unit}:{self.value}|#{dims}|#hostname:{_host()},{int(time.time())}"
        return f"{line},{self.request_id}" if self.request_id else line

    def to_dict(self) -> dict[str, Any]:
        return {
            "MetricName": self.name,
            "Value": self.value,
            "Unit": self.unit,
            "Dimensions": self.dimensions,
            "Timestamp": int(time.time()),
            "HostName": _host(),
            "RequestId": self.request_id,
        }


class MetricsStore:
    """The metrics recorded while handling one batch (or one model load).

    Unlike MMS, every ``add_*`` method honours ``dimensions`` (MMS drops them everywhere but in
    ``add_counter``) and the caller's list is not modified.
    """

    def __init__(self, request_ids: Any, model_name: str) -> None:
        self.store: list[Metric] = []
        self.request_ids = request_ids
        self.model_name = model_name
        self.cache: dict[str, Metric] = {}

    def _add_or_update(
        self,
        name: str,
        value: Any,
        req_id: str | None,
        unit: str | None,
        metrics_method: str | None = None,
        dimensions: list[Dimension] | None = None,
    ) -> None:
        if dimensions is None:
            dimensions = []
        elif not isinstance(dimensions, list):
            raise ValueError("Please provide a list of dimensions")
        if req_id is None:
            dimensions = [*dimensions, Dimension("Level", "Error")]
        else:
            dimensions = [*dimensions, Dimension("ModelName", self.model_name), Dimension("Level", "Model")]
        key = "-".join([name, str(unit), str(req_id)] + [str(d) for d in dimensions])
        metric = self.cache.get(key)
        if metric is None:
            metric = Metric(name, value, unit, dimensions, req_id, metrics_method)
            self.store.append(metric)
            self.cache[key] = metric
        else:
            metric.update(value)

    def _get_req(self, idx: int | None) -> Any:
        req_id = self.request_ids
        if isinstance(req_id, dict):
            req_id = ",".join(req_id.values())
        if idx is not None and self.request_ids is not None and idx in self.request_ids:
            req_id = self.request_ids[idx]
        return req_id

    def add_counter(self, name: str, value: Any, idx: int | None = None, dimensions: Any = None) -> None:
        """Add a counter, or add ``value`` to the counter with the same name and dimensions."""
        self._add_or_update(name, value, self._get_req(idx), "count", "counter", dimensions)

    def add_time(self, name: str, value: Any, idx: int | None = None, unit: str = "ms", dimensions: Any = None) -> None:
        """Add a time metric, in ``ms`` or ``s``."""
        if unit not in ["ms", "s"]:
            raise ValueError("the unit for a timed metric should be one of ['ms', 's']")
        self._add_or_update(name, value, self._get_req(idx), unit, None, dimensions)

    def add_size(self, name: str, value: Any, idx: int | None = None, unit: str = "MB", dimensions: Any = None) -> None:
        """Add a size metric, in ``MB``, ``kB``, ``GB`` or ``B``."""
        if unit not in ["MB", "kB", "GB", "B"]:
            raise ValueError("The unit for size based metric is one of ['MB','kB', 'GB', 'B']")
        self._add_or_update(name, value, self._get_req(idx), unit, None, dimensions)

    def add_percent(self, name: str, value: Any, idx: int | None = None, dimensions: Any = None) -> None:
        """Add a percentage metric."""
        self._add_or_update(name, value, self._get_req(idx), "percent", None, dimensions)

    def add_error(self, name: str, value: Any, dimensions: Any = None) -> None:
        """Add an error metric (no request id; dimension ``Level:Error``)."""
        self._add_or_update(name, value, None, "", None, dimensions)

    def add_metric(
        self, name: str, value: Any, idx: int | None = None, unit: str | None = None, dimensions: Any = None
    ) -> None:
        """Add a metric with any unit (``None`` prints as ``unit``)."""
        self._add_or_update(name, value, self._get_req(idx), unit, None, dimensions)
