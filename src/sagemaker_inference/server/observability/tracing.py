"""OpenTelemetry tracing, only when it is configured; nothing is imported otherwise.

On when either (a) the process already has a tracer provider (``opentelemetry-instrument``, or
the user's own set-up in ``sitecustomize``), found without importing anything, or (b) the
standard ``OTEL_*`` variables name an exporter or an OTLP endpoint (``config.tracing``), in
which case we build the SDK's provider with the exporters ``OTEL_TRACES_EXPORTER`` names
(default ``otlp``), through their entry points, as the SDK's own auto-configuration does.

The frontend opens a server span per inference request, continuing the client's W3C
``traceparent``, and passes the span's own ``traceparent`` to the worker in place of the
client's; the worker opens a ``handle`` span under it (linked to the other requests of a batch)
and makes it current while the handler runs, so the handler's spans nest under the request.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagemaker_inference.server.http.parser import HTTPRequest
    from sagemaker_inference.server.observability.counters import ModelCounters

logger = logging.getLogger("sagemaker_inference.server")

DEFAULT_SERVICE_NAME = "sagemaker-inference"
_PROPAGATED = (b"traceparent", b"tracestate")


def _installed_provider() -> bool:
    """A real (SDK or vendor) tracer provider is set already; decided without importing."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    return type(trace.get_tracer_provider()).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider")


def _configure_sdk() -> Any | None:
    """The SDK's provider with the exporters ``OTEL_TRACES_EXPORTER`` names; None if impossible."""
    try:
        from opentelemetry import trace
        from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning("OTEL_* tracing settings are set but opentelemetry-sdk is not installed: tracing is off "
                       "(pip install opentelemetry-sdk opentelemetry-exporter-otlp)")
        return None
    import os
    from importlib.metadata import entry_points

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    names = [n.strip() for n in os.environ.get(OTEL_TRACES_EXPORTER, "otlp").split(",") if n.strip()]
    for name in names:
        found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
        if not found:
            logger.warning("OTEL_TRACES_EXPORTER names %r, which no installed package provides; skipped", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(found[0].load()()))
    trace.set_tracer_provider(provider)
    return provider


def tracing_enabled(configured: bool) -> bool:
    """Set tracing up if asked for; True when spans will be made."""
    if _installed_provider():
        return True
    return configured and _configure_sdk() is not None


def shutdown() -> None:
    """Flush spans still buffered (the SDK's batch processor) before the process exits."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is not None:
        provider = trace.get_tracer_provider()
        if hasattr(provider, "shutdown"):
            provider.shutdown()


class ServerTracer:
    """The frontend's side: one server span per inference request."""

    def __init__(self) -> None:
        from opentelemetry import propagate, trace

        self._trace, self._propagate = trace, propagate
        self._tracer = trace.get_tracer("sagemaker_inference.server")

    def begin(self, request: HTTPRequest, route: str, model: str, request_id: bytes,
              counters: ModelCounters | None) -> tuple[list[tuple[bytes, bytes]], RequestSpan]:
        """The headers to send the worker (our span's ``traceparent``) and the span's observer."""
        trace = self._trace
        carrier = {name.lower().decode("latin-1"): value.decode("latin-1") for name, value in request.headers
                   if name.lower() in _PROPAGATED}
        parent = self._propagate.extract(carrier) if carrier else None
        method = request.method.decode("latin-1")
        span = self._tracer.start_span(f"{method} {route}", context=parent, kind=trace.SpanKind.SERVER, attributes={
            "http.request.method": method, "url.path": request.path.decode("latin-1"), "http.route": route,
            "sagemaker.model": model, "sagemaker.request_id": request_id.decode("latin-1")})
        outgoing: dict[str, str] = {}
        self._propagate.inject(outgoing, context=trace.set_span_in_context(span))
        headers = [(n, v) for n, v in request.headers if n.lower() not in _PROPAGATED]
        headers += [(name.encode(), value.encode()) for name, value in outgoing.items()]
        return headers, RequestSpan(span, counters, model)


class RequestSpan:
    """Observer of one traced request: counts it (if metrics are on) and ends its span."""

    __slots__ = ("span", "counters", "model")

    def __init__(self, span: Any, counters: ModelCounters | None, model: str):
        self.span, self.counters, self.model = span, counters, model

    def finished(self, status: int, arrived: float) -> None:
        if self.counters is not None:
            self.counters.finished(status, arrived)
        span = self.span
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR))
        span.end()


class WorkerTracer:
    """The worker's side: a ``handle`` span per batch, current while the handler runs."""

    def __init__(self, model: str) -> None:
        from opentelemetry import propagate, trace

        self._trace, self._propagate, self.model = trace, propagate, model
        self._tracer = trace.get_tracer("sagemaker_inference.worker")

    def span(self, headers: Sequence[dict[str, Any]], request_ids: Sequence[str]) -> Any:
        """A context manager: the span of one ``handle`` call for requests with ``headers``."""
        trace = self._trace
        contexts = [self._propagate.extract({"traceparent": h["traceparent"]}) if "traceparent" in h else None
                    for h in headers]
        links = [trace.Link(trace.get_current_span(c).get_span_context()) for c in contexts[1:] if c is not None]
        return self._tracer.start_as_current_span("handle", context=contexts[0] if contexts else None,
                                                  kind=trace.SpanKind.INTERNAL, links=links, attributes={
                                                      "sagemaker.model": self.model,
                                                      "sagemaker.batch_size": len(headers),
                                                      "sagemaker.request_ids": list(request_ids)})
