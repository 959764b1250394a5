"""The caller's current status, mood and focus (get_status, update_status)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from mcp_app.tools import times
from mcp_app.tools.base import ToolFailure, transaction
from mcp_app.tools.rows import out


class UserStatus(enum.StrEnum):
    """Availability, as a person would say it."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    DO_NOT_DISTURB = "do_not_disturb"
    OFFLINE = "offline"


_DEFAULT = {"status": UserStatus.AVAILABLE.value, "mood": None, "focus": None, "note": None, "updated_at": None}


async def fetch_status(conn: asyncpg.Connection, tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """The caller's status row (times in tz, by default the caller's zone), or the default when they never set one."""
    row = await conn.fetchrow("SELECT * FROM status")  # RLS leaves only the caller's row
    return out(row, tz or await times.caller_zone(conn)) if row else dict(_DEFAULT)


async def get_status() -> dict[str, Any]:
    """Your current status, mood and focus."""
    async with transaction() as tx:
        return await fetch_status(tx.conn)


async def update_status(
    status: UserStatus | None = None,
    mood: Annotated[str | None, Field(max_length=100, description="e.g. 'energised'")] = None,
    focus: Annotated[str | None, Field(max_length=200, description="what you are working on")] = None,
    note: Annotated[str | None, Field(max_length=500)] = None,
) -> dict[str, Any]:
    """Set your status, mood, focus or a short note; omitted fields stay."""
    async with transaction() as tx:
        if status is None and mood is None and focus is None and note is None:
            raise ToolFailure("nothing to update: give at least one of status, mood, focus, note")
        # One row per owner: an upsert, so it does not fit update_row.
        row = await tx.conn.fetchrow(
            "INSERT INTO status (status, mood, focus, note) VALUES (coalesce($1, 'available'), $2, $3, $4) "
            "ON CONFLICT (owner_id) DO UPDATE SET status = coalesce($1, status.status), "
            "mood = coalesce($2, status.mood), focus = coalesce($3, status.focus), "
            "note = coalesce($4, status.note), updated_at = now() RETURNING *",
            status.value if status else None,
            mood,
            focus,
            note,
        )
        tx.detail = f"status={row['status']}"
        return out(row, await times.caller_zone(tx.conn))


TOOLS = [get_status, update_status]
