"""The app served by uvicorn on a free port over the session's real PostgreSQL, and MCP clients."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_app.app import create_app
from mcp_app.db import Database
from mcp_pa.core import contract
from mcp_pa.core.settings import Settings
from tests.support.processes import free_port

READ_WRITE = frozenset({contract.PERMISSION_READ, contract.PERMISSION_WRITE})
READ_ONLY = frozenset({contract.PERMISSION_READ})
ADMIN = frozenset(contract.PERMISSIONS)


def new_tenant() -> str:
    """A fresh tenant id per test, so tests never see each other's schemas."""
    return f"t_{uuid.uuid4().hex[:12]}"


def person(tenant_id: str, user: str = "alice", permissions: frozenset[str] = READ_WRITE) -> contract.Identity:
    return contract.Identity(
        user_id=f"apikey:{user}", tenant_id=tenant_id, permissions=permissions, provider="apikey", email=f"{user}@example.com"
    )


@dataclass
class RunningApp:
    """The served app: its base URL and the database pool it uses."""

    url: str
    database: Database

    @contextlib.asynccontextmanager
    async def client(self, identity: contract.Identity, request_id: str | None = None) -> AsyncIterator["Tools"]:
        headers = identity.to_headers()
        if request_id:
            headers[contract.HEADER_REQUEST_ID] = request_id
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(f"{self.url}{contract.MCP_PATH}", http_client=http)
            async with Client(transport, cache=None) as client:
                yield Tools(client)


class Tools:
    """Call tools and get their structured result, or the error text when the call failed."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def ok(self, tool: str, /, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, f"{tool} failed: {result.content[0].text}"
        return result.structured_content

    async def error(self, tool: str, /, **arguments: Any) -> str:
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
        return result.content[0].text


def app_settings(dsn: str, **overrides: Any) -> Settings:
    return Settings(database_connection_string=dsn, public_url="https://mcp.example.com", **overrides)


@contextlib.asynccontextmanager
async def serve(database: Database, **settings: Any) -> AsyncIterator[RunningApp]:
    """The app under uvicorn on a free port over `database`, with these settings overridden."""
    app = create_app(app_settings(database.dsn, **settings), database)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield RunningApp(f"http://127.0.0.1:{port}", database)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@pytest.fixture(scope="session")
async def running_app(pg_dsn: str) -> AsyncIterator[RunningApp]:
    async with serve(Database(pg_dsn, max_size=12)) as running:
        yield running
