"""Read-only MCP resources: pa://status, the lists pa://projects, pa://todos, pa://calendar, pa://documents
(paged: `pa://todos?cursor=…` reads the page after), and one item each at pa://todos/{id} and the like.

Each is the same query its tool runs, as JSON, in the caller's time zone; the gate requires the read permission.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Awaitable, Callable

import asyncpg
from mcp.server.mcpserver import MCPServer

from mcp_app.tools import times
from mcp_app.tools.base import ToolFailure, transaction
from mcp_app.tools.calendar import DEFAULT_WINDOW, event_out, fetch_events
from mcp_app.tools.documents import fetch_documents
from mcp_app.tools.projects import fetch_projects, project_detail
from mcp_app.tools.rows import fetch_owned, out
from mcp_app.tools.status import fetch_status
from mcp_app.tools.todos import fetch_todos, todo_out
from mcp_pa.core import contract

Lister = Callable[[asyncpg.Connection, dt.tzinfo, str | None], Awaitable[Any]]
Getter = Callable[[asyncpg.Connection, dt.tzinfo, uuid.UUID], Awaitable[Any]]


async def _status(conn: asyncpg.Connection, tz: dt.tzinfo, cursor: str | None) -> Any:
    return await fetch_status(conn, tz)


async def _projects(conn: asyncpg.Connection, tz: dt.tzinfo, cursor: str | None) -> Any:
    return await fetch_projects(conn, tz, cursor=cursor)


async def _todos(conn: asyncpg.Connection, tz: dt.tzinfo, cursor: str | None) -> Any:
    return await fetch_todos(conn, tz, cursor=cursor)


async def _calendar(conn: asyncpg.Connection, tz: dt.tzinfo, cursor: str | None) -> Any:
    start = times.midnight(times.today(tz), tz)
    return await fetch_events(conn, tz, start, start + DEFAULT_WINDOW, cursor=cursor)


async def _documents(conn: asyncpg.Connection, tz: dt.tzinfo, cursor: str | None) -> Any:
    return await fetch_documents(conn, tz, cursor=cursor)


async def _todo(conn: asyncpg.Connection, tz: dt.tzinfo, item: uuid.UUID) -> Any:
    return todo_out(await fetch_owned(conn, "todos", "todo", item), tz)


async def _event(conn: asyncpg.Connection, tz: dt.tzinfo, item: uuid.UUID) -> Any:
    return event_out(await fetch_owned(conn, "calendar_events", "calendar event", item), tz)


async def _document(conn: asyncpg.Connection, tz: dt.tzinfo, item: uuid.UUID) -> Any:
    return out(await fetch_owned(conn, "documents", "document", item), tz, exclude=("owner_id", "search", "keywords", "data"))


LISTS: dict[str, tuple[str, Lister]] = {
    "pa://status": ("Your current status, mood and focus", _status),
    "pa://projects": ("Your projects (paged: add ?cursor=<next_cursor>)", _projects),
    "pa://todos": ("Your open todos (paged: add ?cursor=<next_cursor>)", _todos),
    "pa://calendar": ("Your events from today to 30 days ahead (paged: add ?cursor=<next_cursor>)", _calendar),
    "pa://documents": ("Your documents, metadata only (paged: add ?cursor=<next_cursor>)", _documents),
}
ITEMS: dict[str, tuple[str, Getter]] = {
    "pa://todos/{id}": ("One todo", _todo),
    "pa://projects/{id}": ("One project with its tasks and open todos", project_detail),
    "pa://calendar/{id}": ("One calendar event", _event),
    "pa://documents/{id}": ("One document (its text, not the bytes of an upload)", _document),
}
PAGED = "{?cursor}"
assert tuple(LISTS) == contract.RESOURCE_URIS and tuple(ITEMS) == contract.RESOURCE_TEMPLATES, "resources differ from the contract"


def register_resources(server: MCPServer) -> None:
    """Register every list (and its paged form) and every item template; the ToolGate checks the read permission first."""
    for uri, (description, lister) in LISTS.items():
        name = uri.removeprefix("pa://")
        server.resource(uri, name=name, description=description, mime_type="application/json")(_first_page(lister))
        if uri != "pa://status":
            server.resource(uri + PAGED, name=f"{name} page", description=description, mime_type="application/json")(_page(lister))
    for template, (description, getter) in ITEMS.items():
        name = template.removeprefix("pa://").removesuffix("/{id}") + " item"
        server.resource(template, name=name, description=description, mime_type="application/json")(_item(getter))


def _first_page(lister: Lister) -> Callable[[], Awaitable[str]]:
    async def read() -> str:
        # Reads are not audited (a client may poll them); tool calls are.
        async with transaction(audit=False) as tx:
            return json.dumps(await lister(tx.conn, await times.caller_zone(tx.conn), None))

    return read


def _page(lister: Lister) -> Callable[..., Awaitable[str]]:
    async def read(cursor: str | None = None) -> str:
        async with transaction(audit=False) as tx:
            return json.dumps(await lister(tx.conn, await times.caller_zone(tx.conn), cursor or None))

    return read


def _item(getter: Getter) -> Callable[..., Awaitable[str]]:
    async def read(id: str) -> str:  # noqa: A002 - the template's variable name
        try:
            item = uuid.UUID(id)
        except ValueError as exc:
            raise ToolFailure(f"{id[:60]!r} is not an item id (a UUID)") from exc
        async with transaction(audit=False) as tx:
            return json.dumps(await getter(tx.conn, await times.caller_zone(tx.conn), item))

    return read
