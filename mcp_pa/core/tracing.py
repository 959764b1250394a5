"""OpenTelemetry tracing for the services, configured by the standard OTEL_* variables (off when unset).

Nothing of OpenTelemetry is imported unless an OTLP endpoint is set, so a service without tracing
pays no import or per-request cost. Spans go over OTLP/HTTP (protobuf) to
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); the W3C trace context is the
propagator. Once on, every JSON log line written inside a span carries its `trace_id`.
"""

from __future__ import annotations

import logging
import os

# The SDK reads its own variables by specification; these two decide whether it runs at all.
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME_VARIABLE = "OTEL_SERVICE_NAME"


def traces_url() -> str | None:
    """Where OTLP/HTTP spans go (the signal path appended to a base endpoint, as the SDK does); None when off."""
    if not tracing_enabled():
        return None
    specific = os.environ.get(ENDPOINT_VARIABLES[0])
    return specific or os.environ[ENDPOINT_VARIABLES[1]].rstrip("/") + "/v1/traces"


def tracing_enabled() -> bool:
    """True when an OTLP endpoint is configured and OTEL_SDK_DISABLED is not true."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


class TraceIdFilter(logging.Filter):
    """Puts the current span's trace id on each log record (as `trace_id`, 32 hex digits)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
        return True


def configure_tracing(service_name: str) -> bool:
    """Install the tracer provider and the OTLP exporter when tracing is enabled; True if it is."""
    if not tracing_enabled():
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get(SERVICE_NAME_VARIABLE) or service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    for handler in logging.getLogger().handlers:
        handler.addFilter(TraceIdFilter())
    return True


def shutdown_tracing() -> None:
    """Flush the spans still queued (a service calls this as it stops)."""
    if not tracing_enabled():
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()
