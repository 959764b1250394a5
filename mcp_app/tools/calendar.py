"""Calendar events: create, list a time window, delete."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import asyncpg
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_app.tools.base import Limit, RowId, Toolbox, ToolFailure, delete_owned, out, utc

When = Annotated[dt.datetime, Field(description="ISO 8601 date-time, e.g. 2026-12-01T09:30:00+01:00 (no zone = UTC)")]
DEFAULT_EVENT_LENGTH = dt.timedelta(hours=1)
DEFAULT_WINDOW = dt.timedelta(days=30)
MAX_WINDOW = dt.timedelta(days=366)


async def fetch_events(
    conn: asyncpg.Connection, start: dt.datetime, end: dt.datetime, limit: int = 100
) -> list[dict[str, Any]]:
    """Events overlapping [start, end)."""
    rows = await conn.fetch(
        "SELECT * FROM calendar_events WHERE starts_at < $2 AND ends_at >= $1 ORDER BY starts_at LIMIT $3",
        start,
        end,
        limit,
    )
    return [out(r) for r in rows]


def register(server: MCPServer, box: Toolbox) -> None:
    @server.tool(name="create_calendar_event", description="Add an event; without an end it lasts an hour.")
    async def create_calendar_event(
        title: Annotated[str, Field(min_length=1, max_length=200)],
        starts_at: When,
        ends_at: When | None = None,
        location: Annotated[str, Field(max_length=200)] = "",
        description: Annotated[str, Field(max_length=5000)] = "",
    ) -> dict[str, Any]:
        async with box.call() as tx:
            start = utc(starts_at)
            end = utc(ends_at) if ends_at else start + DEFAULT_EVENT_LENGTH
            if end < start:
                raise ToolFailure(f"ends_at ({end.isoformat()}) is before starts_at ({start.isoformat()})")
            row = await tx.conn.fetchrow(
                "INSERT INTO calendar_events (title, starts_at, ends_at, location, description) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING *",
                title,
                start,
                end,
                location,
                description,
            )
            tx.target = str(row["id"])
            return out(row)

    @server.tool(name="list_calendar_events", description="Events in a window (default: now to 30 days ahead).")
    async def list_calendar_events(
        start: When | None = None, end: When | None = None, limit: Limit = 100
    ) -> dict[str, Any]:
        async with box.call() as tx:
            window_start = utc(start) if start else dt.datetime.now(dt.timezone.utc)
            window_end = utc(end) if end else window_start + DEFAULT_WINDOW
            if window_end <= window_start:
                raise ToolFailure("end must be after start")
            if window_end - window_start > MAX_WINDOW:
                raise ToolFailure("the window may span at most 366 days")
            return {"events": await fetch_events(tx.conn, window_start, window_end, limit)}

    @server.tool(name="delete_calendar_event", description="Delete an event.")
    async def delete_calendar_event(event_id: RowId) -> dict[str, Any]:
        return await delete_owned(box, "calendar_events", "calendar event", event_id)
