"""The Starlette app: /mcp (MCP SDK, stateless Streamable HTTP), PRM, health, readiness, metrics.

Layers, outermost first: `IdentityMiddleware` (x-mcp-* → Identity, 401 without) → the MCP
SDK transport → `ToolGate` (permission + audit) → the tools → `Database` (tenant schema, RLS).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import urllib.parse
from typing import Any, AsyncIterator

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, INVALID_REQUEST
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_app import discovery, embeddings
from mcp_app.db import Database, database_dsn
from mcp_app.discovery import authorization_servers as authorization_servers  # moved; kept importable
from mcp_app.discovery import protected_resource_metadata as protected_resource_metadata
from mcp_app.identity import IdentityMiddleware
from mcp_app.prompts import register_prompts
from mcp_app.resources import register_resources
from mcp_app.tools.base import Toolbox, ToolGate
from mcp_app.tools.documents import MAX_REQUEST_BODY_BYTES
from mcp_app.tools.registry import build_tools
from mcp_pa.core import contract
from mcp_pa.core.settings import Settings

SERVER_NAME = "mcp-pa"
SERVER_VERSION = importlib.metadata.version("mcp-pa")
INSTRUCTIONS = (
    "A personal assistant: your status, projects with tasks, todos, calendar, documents and a "
    "dashboard. Every item is private to you; ids are UUIDs returned when an item is created."
)
def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: the public host and loopback; browser origins from settings."""
    public = urllib.parse.urlsplit(settings.public_url)
    hosts = ["localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*"]
    if public.hostname:
        hosts += [public.hostname, public.netloc]
    origin = f"{public.scheme}://{public.netloc}"
    # A page on the loopback host the server itself answers on is same-site, not a rebinding.
    loopback = ["http://localhost", "http://localhost:*", "http://127.0.0.1", "http://127.0.0.1:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(dict.fromkeys(hosts)),
        allowed_origins=list(dict.fromkeys([*settings.allowed_origins, origin, *loopback])),
    )


class AppServer(MCPServer):
    """MCPServer whose prompts/get refuses an unknown prompt or argument as invalid params (the SDK answers -32603 and logs an error)."""

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> Any:
        prompt = next((p for p in await self.list_prompts() if p.name == name), None)
        if prompt is None:
            raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {name[:100]!r}; prompts/list names every prompt")
        given = arguments or {}
        takes = {argument.name: argument for argument in prompt.arguments or []}
        unknown = sorted(set(given) - set(takes))
        missing = sorted(n for n, argument in takes.items() if argument.required and not given.get(n))
        if unknown or missing:
            problems = [f"{n[:100]}: not an argument of {name}" for n in unknown] + [f"{n}: required" for n in missing]
            raise MCPError(code=INVALID_PARAMS, message=f"invalid arguments for prompt {name}: " + "; ".join(problems))
        try:
            result = await super().get_prompt(name, arguments, context)
        except ValueError as exc:  # the prompt functions are pure: only their argument checks raise
            raise MCPError(code=INVALID_PARAMS, message=f"invalid arguments for prompt {name}") from exc
        return result


def build_mcp_server(box: Toolbox) -> MCPServer:
    """The one MCPServer with every tool, resource and prompt, behind the permission gate.

    Raises ToolRegistryError when the tools and the contract's permission table disagree.
    """
    server = AppServer(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        tools=build_tools(),
        # Stateless replicas push nothing, so no era advertises list-changed or subscriptions.
        subscriptions=False,
        middleware=[ToolGate(box)],
    )
    register_resources(server)
    register_prompts(server)
    return server


class McpEndpoint:
    """/mcp as the SDK serves it, minus what a stateless JSON server cannot honour: GET streams and batches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "GET":
            # The spec's answer when the server offers no SSE stream (instead of one that never speaks).
            reply = JSONResponse({"error": "this server offers no event stream: POST JSON-RPC requests to /mcp"}, 405, {"allow": "POST"})
            await reply(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "http.request" and first.get("body", b"").lstrip()[:1] == b"[":
            error = {"code": INVALID_REQUEST, "message": "JSON-RPC batches are not supported: send one request per POST"}
            await JSONResponse({"jsonrpc": "2.0", "id": None, "error": error}, 400)(scope, receive, send)
            return
        await self.app(scope, replaying(first, receive), send)


def replaying(first: Message, receive: Receive) -> Receive:
    """A receive channel that gives `first` (a message already read) once, then the real channel's messages."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return first

    return replay


def create_app(settings: Settings, database: Database | None = None) -> Starlette:
    """The ASGI app. Pass `database` to share a pool (tests); otherwise one is made from settings."""
    db = database or Database(database_dsn(settings))
    server = build_mcp_server(Toolbox(db))
    mcp_http = server.streamable_http_app(
        streamable_http_path=contract.MCP_PATH,
        json_response=True,
        stateless_http=True,  # no session state in the process, so replicas scale out
        transport_security=transport_security(settings),
        max_request_body_size=MAX_REQUEST_BODY_BYTES,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await db.start()
        # Semantic search: the backend loads lazily; the queue worker embeds writes off the request path.
        worker = embeddings.start_worker(db, settings)
        try:
            async with server.session_manager.run():
                yield
        finally:
            await embeddings.stop_worker(db, worker)
            await db.close()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if await db.ping():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, status_code=503)

    async def metrics(_: Request) -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # `--workers N`: every worker's values, summed
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        *discovery.routes(settings),  # PRM and the login document, public, with CORS
        Route(contract.HEALTHZ_PATH, healthz, methods=["GET"]),
        Route(contract.READYZ_PATH, readyz, methods=["GET"]),
        Route(contract.METRICS_PATH, metrics, methods=["GET"]),
        *(Route(r.path, McpEndpoint(r.endpoint)) if isinstance(r, Route) and r.path == contract.MCP_PATH else r for r in mcp_http.routes),
        # /mcp/ is served as /mcp: Starlette's slash redirect would build its Location from the client's Host.
        *(Route(f"{r.path}/", McpEndpoint(r.endpoint)) for r in mcp_http.routes if isinstance(r, Route) and r.path == contract.MCP_PATH),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(IdentityMiddleware)], lifespan=lifespan)
    app.state.database = db
    app.state.mcp_server = server
    return app
