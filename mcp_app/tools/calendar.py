"""Calendar events: create, list a window (recurrences expanded, paged), get, update, delete (one occurrence too), .ics."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from mcp_app.tools import ical, paging, recurrence, times
from mcp_app.tools.base import ToolFailure, Tx, transaction
from mcp_app.tools.inputs import Cursor, Limit, LongText, RowId, ShortText, Title, When
from mcp_app.tools.rows import changes, delete_row, fetch_owned, insert_row, show, supplied, update_row

DEFAULT_EVENT_LENGTH = dt.timedelta(hours=1)
DEFAULT_WINDOW = dt.timedelta(days=30)
MAX_WINDOW = dt.timedelta(days=366)
LISTING = "list_calendar_events"
_KEY = (paging.INSTANT, paging.ID)
_HIDDEN = ("owner_id", "keywords")

Zone = Annotated[str | None, Field(max_length=64, description="IANA time zone of the event, e.g. Europe/Berlin (default: yours)")]
Rule = Annotated[
    str | None, Field(max_length=1000, description="RFC 5545 RRULE, with or without the RRULE: prefix, e.g. FREQ=WEEKLY;BYDAY=MO")
]


@dataclass
class Timing:
    """When an event happens, as stored: instants, its zone, all-day or not, its rule."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    timezone: str
    all_day: bool
    recurrence: str | None


def timing(
    starts_at: dt.date, ends_at: dt.date | None, zone_name: str, rule: str | None, *, length: dt.timedelta | None = None
) -> Timing:
    """Check and settle an event's times: a date is all day (ends_at the last day), a date-time is kept exactly."""
    tz = times.zone(zone_name)
    if not isinstance(starts_at, dt.datetime):
        if isinstance(ends_at, dt.datetime):
            raise ToolFailure("ends_at: an all-day event (starts_at is a date) ends on a date too, e.g. 2026-03-09")
        last_day = ends_at or (starts_at + (length or dt.timedelta(days=1)) - dt.timedelta(days=1))
        if last_day < starts_at:
            raise ToolFailure(f"ends_at ({last_day.isoformat()}) is before starts_at ({starts_at.isoformat()})")
        start, end = times.midnight(starts_at, tz), times.midnight(last_day + dt.timedelta(days=1), tz)
        all_day = True
    else:
        if ends_at is not None and not isinstance(ends_at, dt.datetime):
            raise ToolFailure("ends_at: give a date-time when starts_at has a time (or a date for both, for all day)")
        start = times.aware(starts_at, tz)
        end = times.aware(ends_at, tz) if ends_at is not None else start + (length or DEFAULT_EVENT_LENGTH)
        if end < start:
            raise ToolFailure(f"ends_at ({end.isoformat()}) is before starts_at ({start.isoformat()})")
        all_day = False
    normalised = None
    if rule is not None and rule.strip():
        recurrence.parse(rule, start, tz)
        normalised = recurrence.normalise(rule)
    return Timing(start, end, zone_name, all_day, normalised)


def event_out(row: asyncpg.Record, tz: dt.tzinfo, occurrence: tuple[dt.datetime, dt.datetime] | None = None) -> dict[str, Any]:
    """An event (or one occurrence of it) in the caller's zone; all-day events as dates (ends_at the last day)."""
    result = {key: show(value, tz) for key, value in row.items() if key not in _HIDDEN}
    begins, ends = occurrence or (row["starts_at"], row["ends_at"])
    if row["all_day"]:
        own = zoneinfo.ZoneInfo(row["timezone"])
        result["starts_at"] = begins.astimezone(own).date().isoformat()
        result["ends_at"] = (ends.astimezone(own) - dt.timedelta(days=1)).date().isoformat()
    else:
        result["starts_at"], result["ends_at"] = show(begins, tz), show(ends, tz)
    result["recurring"] = row["recurrence"] is not None
    return result


async def fetch_events(
    conn: asyncpg.Connection, tz: dt.tzinfo, start: dt.datetime, end: dt.datetime, limit: int = 100, cursor: str | None = None
) -> dict[str, Any]:
    """One page of the events and occurrences overlapping [start, end), by (start, id)."""
    after = paging.decode(cursor, LISTING, _KEY)
    single = await conn.fetch(
        "SELECT * FROM calendar_events WHERE recurrence IS NULL AND starts_at < $2 AND (ends_at > $1 OR starts_at >= $1) "
        "AND ($3::timestamptz IS NULL OR (starts_at, id) > ($3::timestamptz, $4::uuid)) ORDER BY starts_at, id LIMIT $5",
        start,
        end,
        *(after or (None, None)),
        limit + 1,
    )
    found: list[tuple[dt.datetime, Any, asyncpg.Record, tuple[dt.datetime, dt.datetime] | None]] = [
        (r["starts_at"], r["id"], r, None) for r in single
    ]
    for row in await conn.fetch("SELECT * FROM calendar_events WHERE recurrence IS NOT NULL AND starts_at < $1", end):
        own = zoneinfo.ZoneInfo(row["timezone"])
        duration = recurrence.wall_duration(row["starts_at"], row["ends_at"], own)
        for begins, ends in recurrence.occurrences(row["recurrence"], row["starts_at"], duration, row["timezone"], start, end, row["exdates"]):
            if after is None or (begins, row["id"]) > (after[0], after[1]):
                found.append((begins, row["id"], row, (begins, ends)))
    found.sort(key=lambda item: (item[0], item[1]))
    page, next_cursor = paging.page(LISTING, found, limit, lambda item: (item[0], item[1]))
    return {"events": [event_out(row, tz, occ) for _, _, row, occ in page], "next_cursor": next_cursor}


async def create_calendar_event(
    title: Title,
    starts_at: When,
    ends_at: When | None = None,
    location: ShortText = "",
    description: LongText = "",
    timezone: Zone = None,
    recurrence: Rule = None,
) -> dict[str, Any]:
    """Add an event. A date-time keeps its offset (no offset = the event's zone); a date makes it all day.
    Without an end it lasts an hour (all day: one day). `recurrence` repeats it (RFC 5545 RRULE) in its zone."""
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        when = timing(starts_at, ends_at, timezone or str(tz), recurrence)
        event_id = uuid.uuid4()
        values = {
            "id": event_id,
            "uid": f"{event_id}{ical.UID_SUFFIX}",
            "title": title,
            "starts_at": when.starts_at,
            "ends_at": when.ends_at,
            "timezone": when.timezone,
            "all_day": when.all_day,
            "recurrence": when.recurrence,
            "location": location,
            "description": description,
        }
        return event_out(await insert_row(tx, "calendar_events", values), tz)


async def list_calendar_events(
    start: When | None = None, end: When | None = None, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    """Events and occurrences of recurring events in a window (default: today, in your zone, to 30 days ahead); dates are your local days.
    Pages with cursor/next_cursor (pass the same window)."""
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        window_start = _instant(start, tz) if start is not None else times.midnight(times.today(tz), tz)
        window_end = _instant(end, tz, end_of_day=True) if end is not None else window_start + DEFAULT_WINDOW
        if window_end <= window_start:
            raise ToolFailure("end must be after start")
        if window_end - window_start > MAX_WINDOW:
            raise ToolFailure("the window may span at most 366 days")
        return await fetch_events(tx.conn, tz, window_start, window_end, limit, cursor)


def _instant(value: dt.date, tz: dt.tzinfo, *, end_of_day: bool = False) -> dt.datetime:
    # A day in a window means the caller's whole local day (an end date includes that day).
    if isinstance(value, dt.datetime):
        return times.aware(value, tz)
    return times.midnight(value + dt.timedelta(days=1) if end_of_day else value, tz)


async def get_calendar_event(event_id: RowId) -> dict[str, Any]:
    """One event (a recurring one with its rule and EXDATEs)."""
    async with transaction() as tx:
        tx.target = str(event_id)
        return event_out(await fetch_owned(tx.conn, "calendar_events", "calendar event", event_id), await times.caller_zone(tx.conn))


async def update_calendar_event(
    event_id: RowId,
    title: Title | None = None,
    starts_at: When | None = None,
    ends_at: When | None = None,
    location: ShortText | None = None,
    description: LongText | None = None,
    timezone: Zone = None,
    recurrence: Rule = None,
) -> dict[str, Any]:
    """Change an event; null clears ends_at (back to an hour, or one day), location, description or recurrence; omitted fields stay.
    Moving starts_at keeps the length unless ends_at is given too."""
    given = supplied()
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        row = await fetch_owned(tx.conn, "calendar_events", "calendar event", event_id)
        fields = changes(
            given,
            {"title": title, "location": location, "description": description},
            required=("title", "starts_at", "timezone"),
            blank={"location": "", "description": ""},
        )
        changes(given, {"starts_at": starts_at, "timezone": timezone}, required=("starts_at", "timezone"))
        if given & {"starts_at", "ends_at", "timezone", "recurrence"}:
            fields.update(vars(_retimed(row, given, starts_at, ends_at, timezone, recurrence)))
            if given & {"starts_at", "timezone", "recurrence"}:
                fields["exdates"] = []  # the skipped occurrences belonged to the old series
        return event_out(await update_row(tx, "calendar_events", "calendar event", event_id, fields), tz)


def _retimed(
    row: asyncpg.Record, given: frozenset[str], starts_at: dt.date | None, ends_at: dt.date | None, zone_name: str | None, rule: str | None
) -> Timing:
    own = zone_name if "timezone" in given and zone_name else row["timezone"]
    tz = times.zone(own)
    if row["all_day"]:
        old_start: dt.date = row["starts_at"].astimezone(tz).date()
        old_end: dt.date = (row["ends_at"].astimezone(tz) - dt.timedelta(days=1)).date()
    else:
        old_start, old_end = row["starts_at"], row["ends_at"]
    new_start = starts_at if "starts_at" in given and starts_at is not None else old_start
    length: dt.timedelta | None = None
    if "ends_at" in given:
        new_end = ends_at
    elif "starts_at" in given:
        # Keep the length; switching between all-day and timed starts afresh.
        new_end = None
        if isinstance(new_start, dt.datetime) == (not row["all_day"]):
            length = (old_end - old_start) + (dt.timedelta(days=1) if row["all_day"] else dt.timedelta())
    else:
        new_end = old_end
    new_rule = rule if "recurrence" in given else row["recurrence"]
    return timing(new_start, new_end, own, new_rule, length=length)


async def delete_calendar_event(
    event_id: RowId,
    occurrence: Annotated[When | None, Field(description="delete only the occurrence of a recurring event starting then (adds an EXDATE)")] = None,
) -> dict[str, Any]:
    """Delete an event, or with `occurrence` one occurrence of a recurring event."""
    if occurrence is None:
        return await delete_row("calendar_events", "calendar event", event_id)
    async with transaction() as tx:
        tx.target = str(event_id)
        tz = await times.caller_zone(tx.conn)
        row = await fetch_owned(tx.conn, "calendar_events", "calendar event", event_id)
        if row["recurrence"] is None:
            raise ToolFailure("occurrence: this event does not repeat; delete it without occurrence")
        when = _instant(occurrence, zoneinfo.ZoneInfo(row["timezone"])) if row["all_day"] else _instant(occurrence, tz)
        if not recurrence.is_occurrence(row["recurrence"], row["starts_at"], row["timezone"], when):
            raise ToolFailure(f"occurrence: the event has no occurrence starting at {show(when, tz)}")
        updated = await tx.conn.fetchrow(
            "UPDATE calendar_events SET exdates = array_append(exdates, $2), updated_at = now() WHERE id = $1 RETURNING *", event_id, when
        )
        tx.detail = "one occurrence"
        return {"deleted": str(event_id), "occurrence": show(when, tz), "event": event_out(updated, tz)}


async def export_calendar() -> dict[str, Any]:
    """Your calendar as iCalendar text (RFC 5545): every event with its zone, RRULE and EXDATEs."""
    async with transaction() as tx:
        rows = await tx.conn.fetch("SELECT * FROM calendar_events ORDER BY starts_at, id")
        tx.detail = f"{len(rows)} events"
        return {"ics": ical.export(rows), "events": len(rows)}


async def import_calendar(ics: Annotated[str, Field(min_length=1, max_length=ical.MAX_ICS_CHARS, description="the .ics text")]) -> dict[str, Any]:
    """Add the events of an .ics file (RFC 5545); an event whose UID was imported before is updated, not duplicated."""
    async with transaction() as tx:
        events = ical.parse(ics, str(await times.caller_zone(tx.conn)))
        created = updated = 0
        for event in events:
            when = timing(event.starts_at, event.ends_at, event.timezone, event.recurrence)
            values = {
                "uid": event.uid,
                "title": event.title,
                "starts_at": when.starts_at,
                "ends_at": when.ends_at,
                "timezone": when.timezone,
                "all_day": when.all_day,
                "recurrence": when.recurrence,
                "exdates": event.exdates,
                "location": event.location,
                "description": event.description,
            }
            inserted = await _upsert(tx, values)
            created, updated = created + inserted, updated + (not inserted)
        tx.detail = f"{created} created, {updated} updated"
        return {"created": created, "updated": updated, "events": len(events)}


async def _upsert(tx: Tx, values: dict[str, Any]) -> bool:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    refresh = ", ".join(f"{c} = EXCLUDED.{c}" for c in values if c != "uid")
    return bool(
        await tx.conn.fetchval(
            f"INSERT INTO calendar_events ({columns}) VALUES ({params}) ON CONFLICT (owner_id, uid) DO UPDATE SET {refresh}, updated_at = now() "
            "RETURNING (xmax = 0)",
            *values.values(),
        )
    )


TOOLS = [
    create_calendar_event,
    list_calendar_events,
    get_calendar_event,
    update_calendar_event,
    delete_calendar_event,
    export_calendar,
    import_calendar,
]
