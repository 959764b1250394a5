"""OpenTelemetry: one tools/call through Envoy is one trace, with spans from Envoy, authz and the app.

A small OTLP/HTTP receiver in the test (127.0.0.1) collects what Envoy's OpenTelemetry tracer and
the two services' SDKs export; the W3C context must join them into one trace, reaching PostgreSQL
(asyncpg spans), with the trace id in Envoy's access log and in the app's JSON log, and no
credential or request body in any span. A client's trace context in `params._meta` (SEP-414) is
continued by the app's tool-call span.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from authz_service.providers.apikey import key_hash
from mcp_pa.core import contract
from mcp_pa.up.certs import ensure_dev_certs
from tests.support.processes import free_port, scratch_dir
from tests.support.stack import Envoy, Running, start_app, start_authz, start_envoy

SERVICES = {"mcp-pa-envoy", "mcp-pa-authz", "mcp-pa-app"}


@dataclass
class Span:
    service: str
    trace_id: str
    name: str
    attributes: dict[str, str]
    parent_span_id: str = ""


@dataclass
class Receiver:
    """Spans received over OTLP/HTTP, by whoever sent them."""

    spans: list[Span] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            self.bodies.append(body)
            for resource_spans in request.resource_spans:
                service = next((a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), "")
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        attributes = {a.key: str(getattr(a.value, a.value.WhichOneof("value") or "string_value")) for a in span.attributes}
                        self.spans.append(Span(service, span.trace_id.hex(), span.name, attributes, span.parent_span_id.hex()))

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


def serve(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def read_body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("content-length") or 0))
            body = b""  # Envoy's exporter sends its batches chunked
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return body

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.read_body()
            if self.path == "/v1/traces":
                receiver.add(body)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Traced:
    receiver: Receiver
    envoy: Envoy
    authz: Running
    app: Running
    api_key: str
    tenant: str


@pytest.fixture(scope="module")
def traced(pg_dsn: str) -> Iterator[Traced]:
    receiver = Receiver()
    collector = serve(receiver)
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    tenant = f"traced_{secrets.token_hex(4)}"
    api_key = contract.API_KEY_PREFIX + secrets.token_urlsafe(32)
    with scratch_dir("mcp-pa-tracing-") as root:
        keys_file = root / "keys.yaml"
        keys_file.write_text(yaml.safe_dump({"keys": [{"id": "traced", "sha256": key_hash(api_key), "tenant": tenant, "permissions": ["read", "write"]}]}))
        authz = start_authz(root, free_port(), "https://localhost", {**otel, "MCP_HTTP_API_KEYS_FILE": str(keys_file)})
        app: Running | None = None
        envoy: Envoy | None = None
        try:
            app = start_app(root, pg_dsn, "https://localhost", {**otel, "MCP_HTTP_LOG_LEVEL": "INFO"})
            envoy = start_envoy(root / "envoy", ensure_dev_certs(root / "tls"), authz_port=authz.port, app_port=app.port,
                                otlp_traces_url=f"{endpoint}/v1/traces")
            yield Traced(receiver, envoy, authz, app, api_key, tenant)
        finally:
            for part in (envoy, app, authz):
                if part is not None:
                    part.stop()
            collector.shutdown()


def tools_call(traced: Traced, meta: dict[str, str] | None = None) -> tuple[int, str]:
    """One tools/call whoami through Envoy, as a client that starts the trace (W3C traceparent header); its trace id.

    With `meta` the call carries that `_meta` (SEP-414's trace context) and no traceparent header.
    """
    params: dict[str, Any] = {"name": "whoami", "arguments": {}}
    headers = {
        contract.HEADER_API_KEY: traced.api_key, "content-type": "application/json", "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18", contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "whoami",
    }
    trace_id = secrets.token_hex(16)
    if meta is None:
        headers["traceparent"] = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    else:
        params["_meta"] = meta
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    reply = traced.envoy.request("POST", contract.MCP_PATH, headers, body)
    return reply.status, trace_id


def wait_for(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def test_one_tool_call_is_one_trace_across_envoy_authz_app_and_postgres(traced: Traced) -> None:
    status, trace_id = tools_call(traced)
    assert status == 200
    wait_for(lambda: any(e.get("trace_id") == trace_id for e in traced.envoy.access_log()),
             f"the client's trace id is in no access log line: {traced.envoy.access_log()[-3:]}")

    def complete() -> list[Span] | None:
        spans = traced.receiver.trace(trace_id)
        return spans if {s.service for s in spans} >= SERVICES and any("db.system" in s.attributes for s in spans) else None

    spans = wait_for(complete, f"the trace {trace_id} never held spans of {SERVICES} and PostgreSQL: "
                     + "; ".join(f"{s.service}:{s.name}:{s.trace_id[:8]}" for s in traced.receiver.spans))
    print(f"trace {trace_id}: " + ", ".join(f"{s.service}:{s.name}" for s in spans))
    assert any(s.service == "mcp-pa-authz" and "Check" in s.name for s in spans)
    assert any(s.service == "mcp-pa-app" and s.attributes.get("db.system") == "postgresql" for s in spans)
    # The app's JSON log line written inside the request (its first call migrates the tenant's schema) carries the trace id.
    log = [json.loads(line) for line in traced.app.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("trace_id") == trace_id for e in log), "\n".join(json.dumps(e) for e in log[-6:])


def test_the_trace_context_a_client_puts_in_meta_is_continued_by_the_tool_call_span(traced: Traced) -> None:
    # A 2026-07-28 client carries W3C trace context in params._meta (SEP-414: plain traceparent/tracestate keys);
    # with no traceparent header Envoy starts a trace of its own, but the app's tool-call span joins the client's.
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    status, _ = tools_call(traced, {"traceparent": f"00-{trace_id}-{parent}-01", "tracestate": "client=1"})
    assert status == 200

    def tool_span() -> Span | None:
        return next((s for s in traced.receiver.trace(trace_id) if s.service == "mcp-pa-app" and s.name == "tools/call whoami"), None)

    span = wait_for(tool_span, f"no app span in the _meta trace {trace_id}: "
                    + "; ".join(f"{s.service}:{s.name}:{s.trace_id[:8]}" for s in traced.receiver.spans[-12:]))
    assert span.parent_span_id == parent
    # The work inside the call (its PostgreSQL queries) is in the client's trace too.
    wait_for(lambda: any("db.system" in s.attributes for s in traced.receiver.trace(trace_id)), "no asyncpg span in the _meta trace")


def test_no_span_carries_a_credential_or_a_request_body(traced: Traced) -> None:
    status, _ = tools_call(traced)
    assert status == 200
    wait_for(lambda: {s.service for s in traced.receiver.spans} >= SERVICES, "no spans")
    time.sleep(0.5)  # the batch with this call's spans
    with traced.receiver.lock:
        exported = b"".join(traced.receiver.bodies)
    assert traced.api_key.encode() not in exported
    assert key_hash(traced.api_key).encode() not in exported
    assert b'"jsonrpc"' not in exported, [s for s in traced.receiver.spans if any('"jsonrpc"' in v for v in s.attributes.values())][:3]


def test_without_an_otlp_endpoint_nothing_of_the_opentelemetry_sdk_is_loaded() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    code = ("import sys; from authz_service import tracing as a; from mcp_app import tracing as m; "
            "from starlette.applications import Starlette; app = Starlette(); "
            "assert a.instrument() is False and m.instrument(app) is app; "
            "print(sorted(n for n in sys.modules if n.startswith(('opentelemetry.sdk', 'opentelemetry.instrumentation', 'opentelemetry.exporter'))))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
