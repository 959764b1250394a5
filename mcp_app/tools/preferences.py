"""The caller's preferences: their time zone (IANA name), in which every time is shown."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from mcp_app.tools import times
from mcp_app.tools.base import transaction
from mcp_app.tools.rows import out


async def get_preferences() -> dict[str, Any]:
    """Your preferences: the time zone your times are shown in (UTC until you set one)."""
    async with transaction() as tx:
        row = await tx.conn.fetchrow("SELECT timezone, updated_at FROM preferences")  # RLS: only the caller's row
        return out(row) if row else {"timezone": times.DEFAULT_ZONE, "updated_at": None}


async def update_preferences(
    timezone: Annotated[str, Field(min_length=1, max_length=64, description="IANA time zone, e.g. Europe/Berlin or America/New_York")],
) -> dict[str, Any]:
    """Set your time zone: times are shown in it, and dates and times without an offset are read in it."""
    async with transaction() as tx:
        name = str(times.zone(timezone.strip()))
        row = await tx.conn.fetchrow(
            "INSERT INTO preferences (timezone) VALUES ($1) ON CONFLICT (owner_id) DO UPDATE SET timezone = $1, updated_at = now() "
            "RETURNING timezone, updated_at",
            name,
        )
        tx.detail = f"timezone={name}"
        return out(row, times.zone(name))


TOOLS = [get_preferences, update_preferences]
