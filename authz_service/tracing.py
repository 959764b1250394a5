"""The authz service's OpenTelemetry hook: a server span per Check, continuing Envoy's trace.

Off unless an OTLP endpoint is set (mcp_pa.core.tracing). The gRPC instrumentation records the
method and peer, never the request message or its metadata, so no credential reaches a span.
"""

from __future__ import annotations

from mcp_pa.core.tracing import configure_tracing

SERVICE_NAME = "mcp-pa-authz"


def instrument() -> bool:
    """Instrument grpc.aio servers created after this call; True when tracing is on."""
    if not configure_tracing(SERVICE_NAME):
        return False
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer

    GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    return True
