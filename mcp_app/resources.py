"""Read-only MCP resources: pa://status, pa://projects, pa://todos, pa://calendar, pa://documents.

Each is the same query its list tool runs, as JSON; the gate requires the read permission.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Awaitable, Callable

import asyncpg
from mcp.server.mcpserver import MCPServer

from mcp_app.tools.base import transaction
from mcp_app.tools.calendar import DEFAULT_WINDOW, fetch_events
from mcp_app.tools.documents import fetch_documents
from mcp_app.tools.projects import fetch_projects
from mcp_app.tools.status import fetch_status
from mcp_app.tools.todos import fetch_todos


async def _upcoming_events(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.timezone.utc)
    return await fetch_events(conn, now, now + DEFAULT_WINDOW)


READERS: dict[str, tuple[str, Callable[[asyncpg.Connection], Awaitable[Any]]]] = {
    "pa://status": ("Your current status, mood and focus", fetch_status),
    "pa://projects": ("Your projects", fetch_projects),
    "pa://todos": ("Your open todos", fetch_todos),
    "pa://calendar": ("Your events in the next 30 days", _upcoming_events),
    "pa://documents": ("Your documents (metadata)", fetch_documents),
}


def register_resources(server: MCPServer) -> None:
    """Register every reader; the server's ToolGate checks the read permission first."""
    for uri, (description, reader) in READERS.items():
        server.resource(uri, name=uri.removeprefix("pa://"), description=description, mime_type="application/json")(_resource(reader))


def _resource(reader: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Callable[[], Awaitable[str]]:
    async def read() -> str:
        # Reads are not audited (a client may poll them); tool calls are.
        async with transaction(audit=False) as tx:
            return json.dumps(await reader(tx.conn))

    return read
