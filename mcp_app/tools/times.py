"""Time zones: the caller's zone (from preferences), naive input read in it, output shown in it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import asyncpg

from mcp_app.tools.base import ToolFailure

DEFAULT_ZONE = "UTC"


def zone(name: str, *, field: str = "timezone") -> zoneinfo.ZoneInfo:
    """The IANA zone of that name; a ToolFailure naming the field otherwise."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ToolFailure(f"{field}: {name[:64]!r} is not an IANA time zone name (for example Europe/Berlin or America/New_York)") from exc


async def caller_zone(conn: asyncpg.Connection) -> zoneinfo.ZoneInfo:
    """The caller's zone from preferences; UTC until they set one."""
    name = await conn.fetchval("SELECT timezone FROM preferences")  # RLS leaves only the caller's row
    return zoneinfo.ZoneInfo(name or DEFAULT_ZONE)


def aware(value: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """An instant: input with an offset or zone is kept as given; naive input is wall time in tz."""
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The instant a local day starts in tz (DST-correct: zoneinfo resolves the offset of that day)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz)


def today(tz: dt.tzinfo, now: dt.datetime | None = None) -> dt.date:
    """The caller's local date now."""
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(tz).date()


def due(value: dt.date | None, tz: dt.tzinfo) -> tuple[dt.date | None, dt.datetime | None]:
    """(due_date, due_at) for a due input: a date is a day; a date-time is that instant, on its local day."""
    if value is None:
        return None, None
    if isinstance(value, dt.datetime):
        instant = aware(value, tz)
        return instant.astimezone(tz).date(), instant
    return value, None


def overdue(due_date: dt.date | None, due_at: dt.datetime | None, tz: dt.tzinfo, *, done: bool, now: dt.datetime | None = None) -> bool:
    """Past its due time (or, for a day, past that local day) and not done."""
    if done or due_date is None:
        return False
    current = now or dt.datetime.now(dt.timezone.utc)
    if due_at is not None:
        return due_at < current
    return due_date < today(tz, current)
