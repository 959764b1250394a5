"""The app's OpenTelemetry hooks: a server span per HTTP request (ASGI) and a span per asyncpg query.

Off unless an OTLP endpoint is set (mcp_pa.core.tracing). No request or response body and no header
is recorded: the ASGI middleware captures headers only when OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*
asks for them, and the asyncpg spans carry the SQL text without its parameters.

The trace context a 2026-07-28 client puts in `params._meta` (SEP-414: `traceparent`, `tracestate`) is
honoured by the MCP SDK's own OpenTelemetryMiddleware, the outermost of the server's middleware (before
ToolGate): its `tools/call <name>` span continues the `_meta` trace, so the tool's queries join it, even
though the HTTP span follows the header (Envoy's). tests/scale/test_tracing.py pins this.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from mcp_pa.core.tracing import configure_tracing

SERVICE_NAME = "mcp-pa-app"


def instrument(app: ASGIApp) -> ASGIApp:
    """`app` wrapped in a tracing middleware when tracing is on; `app` itself otherwise."""
    if not configure_tracing(SERVICE_NAME):
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor(capture_parameters=False).instrument()  # type: ignore[no-untyped-call]
    # Health probes every few seconds would drown the traces that matter.
    return OpenTelemetryMiddleware(app, excluded_urls="healthz,readyz,metrics")
