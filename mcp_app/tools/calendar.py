"""Calendar events: create, list a time window, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from mcp_app.tools.base import ToolFailure, transaction
from mcp_app.tools.inputs import Limit, LongText, RowId, ShortText, Title, When
from mcp_app.tools.rows import delete_row, insert_row, out, utc

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


async def create_calendar_event(
    title: Title,
    starts_at: When,
    ends_at: When | None = None,
    location: ShortText = "",
    description: LongText = "",
) -> dict[str, Any]:
    """Add an event; without an end it lasts an hour."""
    async with transaction() as tx:
        start = utc(starts_at)
        end = utc(ends_at) if ends_at else start + DEFAULT_EVENT_LENGTH
        if end < start:
            raise ToolFailure(f"ends_at ({end.isoformat()}) is before starts_at ({start.isoformat()})")
        values = {"title": title, "starts_at": start, "ends_at": end, "location": location, "description": description}
        return out(await insert_row(tx, "calendar_events", values))


async def list_calendar_events(start: When | None = None, end: When | None = None, limit: Limit = 100) -> dict[str, Any]:
    """Events in a window (default: now to 30 days ahead)."""
    async with transaction() as tx:
        window_start = utc(start) if start else dt.datetime.now(dt.timezone.utc)
        window_end = utc(end) if end else window_start + DEFAULT_WINDOW
        if window_end <= window_start:
            raise ToolFailure("end must be after start")
        if window_end - window_start > MAX_WINDOW:
            raise ToolFailure("the window may span at most 366 days")
        return {"events": await fetch_events(tx.conn, window_start, window_end, limit)}


async def delete_calendar_event(event_id: RowId) -> dict[str, Any]:
    """Delete an event."""
    return await delete_row("calendar_events", "calendar event", event_id)


TOOLS = [create_calendar_event, list_calendar_events, delete_calendar_event]
