"""The Starlette app: /mcp (MCP SDK, stateless Streamable HTTP), PRM, health, readiness, metrics.

Layers, outermost first: `IdentityMiddleware` (x-mcp-* → Identity, 401 without) → the MCP
SDK transport → `ToolGate` (permission + audit) → the tools → `Database` (tenant schema, RLS).
"""

from __future__ import annotations

import contextlib
import urllib.parse
from typing import AsyncIterator

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_app import discovery, embeddings
from mcp_app.db import Database, database_dsn
from mcp_app.discovery import authorization_servers as authorization_servers  # moved; kept importable
from mcp_app.discovery import protected_resource_metadata as protected_resource_metadata
from mcp_app.identity import IdentityMiddleware
from mcp_app.resources import register_resources
from mcp_app.tools.base import Toolbox, ToolGate
from mcp_app.tools.documents import MAX_REQUEST_BODY_BYTES
from mcp_app.tools.registry import register_tools
from mcp_pa.core import contract
from mcp_pa.core.settings import Settings

SERVER_NAME = "mcp-pa"
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
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(dict.fromkeys(hosts)),
        allowed_origins=list(dict.fromkeys([*settings.allowed_origins, origin])),
    )


def build_mcp_server(box: Toolbox) -> MCPServer:
    """The one MCPServer with every tool and resource, behind the permission gate.

    Raises ToolRegistryError when the tools and the contract's permission table disagree.
    """
    server: MCPServer = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, middleware=[ToolGate(box)])
    register_tools(server)
    register_resources(server)
    return server


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
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        *discovery.routes(settings),  # PRM and the login document, public, with CORS
        Route(contract.HEALTHZ_PATH, healthz, methods=["GET"]),
        Route(contract.READYZ_PATH, readyz, methods=["GET"]),
        Route(contract.METRICS_PATH, metrics, methods=["GET"]),
        *mcp_http.routes,
        # /mcp/ is served as /mcp: Starlette's slash redirect would build its Location from the client's Host.
        *(Route(f"{r.path}/", r.endpoint) for r in mcp_http.routes if isinstance(r, Route) and r.path == contract.MCP_PATH),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(IdentityMiddleware)], lifespan=lifespan)
    app.state.database = db
    app.state.mcp_server = server
    return app
