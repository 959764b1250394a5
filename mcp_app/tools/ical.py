"""iCalendar (RFC 5545) in and out for the calendar tools, through the `icalendar` package."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Sequence

import icalendar

from mcp_app.tools.base import ToolFailure
from mcp_app.tools.inputs import EARLIEST, LATEST, LONG_TEXT_MAX_CHARS, TITLE_MAX_CHARS

MAX_ICS_CHARS = 4 * 1024 * 1024
MAX_EVENTS = 5000
PRODID = "-//mcp-pa//personal assistant//EN"
UID_SUFFIX = "@mcp-pa"


@dataclass
class ImportedEvent:
    """One VEVENT as the calendar tools store it."""

    uid: str
    title: str
    starts_at: dt.date
    ends_at: dt.date | None
    timezone: str
    recurrence: str | None
    location: str = ""
    description: str = ""
    exdates: list[dt.datetime] = field(default_factory=list)


def export(rows: Sequence[Any]) -> str:
    """Every event as one VCALENDAR, with a VTIMEZONE for each zone used."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    for row in rows:
        tz = zoneinfo.ZoneInfo(row["timezone"])
        event = icalendar.Event()
        event.add("uid", row["uid"] or f"{row['id']}{UID_SUFFIX}")
        event.add("summary", row["title"])
        event.add("dtstamp", row["updated_at"])
        start, end = row["starts_at"].astimezone(tz), row["ends_at"].astimezone(tz)
        if row["all_day"]:
            event.add("dtstart", start.date())
            event.add("dtend", end.date())
        else:
            event.add("dtstart", start)
            event.add("dtend", end)
        if row["location"]:
            event.add("location", row["location"])
        if row["description"]:
            event.add("description", row["description"])
        if row["recurrence"]:
            event.add("rrule", icalendar.vRecur.from_ical(row["recurrence"]))
            if row["exdates"]:
                skipped = [e.astimezone(tz) for e in row["exdates"]]
                event.add("exdate", [e.date() for e in skipped] if row["all_day"] else skipped)
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return str(calendar.to_ical().decode("utf-8"))


def parse(text: str, default_zone: str) -> list[ImportedEvent]:
    """The VEVENTs of an .ics text; ToolFailure naming the event and what is wrong with it."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ToolFailure(f"ics: not valid iCalendar ({_short(exc)})") from exc
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise ToolFailure("ics: the text must be one BEGIN:VCALENDAR ... END:VCALENDAR")
    events = calendar.walk("VEVENT")
    if not events:
        raise ToolFailure("ics: the calendar has no VEVENT")
    if len(events) > MAX_EVENTS:
        raise ToolFailure(f"ics: {len(events)} events; at most {MAX_EVENTS} per import")
    found = [_event(number, event, default_zone) for number, event in enumerate(events, start=1)]
    uids = [e.uid for e in found]
    if len(uids) != len(set(uids)):
        duplicate = next(uid for uid in uids if uids.count(uid) > 1)
        raise ToolFailure(f"ics: UID {duplicate[:100]!r} appears on more than one VEVENT (recurrence overrides are not supported)")
    return found


def _event(number: int, event: Any, default_zone: str) -> ImportedEvent:
    uid = _text(event.get("uid")).strip()
    where = f"ics: event {number}" + (f" (UID {uid[:100]!r})" if uid else "")
    if event.errors:
        name, problem = event.errors[0]
        raise ToolFailure(f"{where}: {name} is malformed ({_short(problem)})")
    if not uid:
        raise ToolFailure(f"{where}: UID is missing")
    if len(uid) > 255:
        raise ToolFailure(f"{where}: UID is longer than 255 characters")
    if "RECURRENCE-ID" in event:
        raise ToolFailure(f"{where}: RECURRENCE-ID (a changed occurrence) is not supported")
    title = _text(event.get("summary")).strip() or "(no title)"
    if len(title) > TITLE_MAX_CHARS:
        raise ToolFailure(f"{where}: SUMMARY is longer than {TITLE_MAX_CHARS} characters")
    description = _text(event.get("description"))
    if len(description) > LONG_TEXT_MAX_CHARS:
        raise ToolFailure(f"{where}: DESCRIPTION is longer than {LONG_TEXT_MAX_CHARS} characters")
    location = _text(event.get("location"))
    if len(location) > TITLE_MAX_CHARS:
        raise ToolFailure(f"{where}: LOCATION is longer than {TITLE_MAX_CHARS} characters")
    if event.get("dtstart") is None:
        raise ToolFailure(f"{where}: DTSTART is missing")
    start = _when(event.get("dtstart").dt, where, "DTSTART")
    zone = start.tzinfo.key if isinstance(start, dt.datetime) and isinstance(start.tzinfo, zoneinfo.ZoneInfo) else default_zone
    if isinstance(start, dt.datetime) and start.tzinfo is not None and not isinstance(start.tzinfo, zoneinfo.ZoneInfo):
        zone = "UTC"  # a fixed offset or a custom VTIMEZONE: the instant is kept exactly
    end: dt.date | None = None
    if event.get("dtend") is not None:
        end = _when(event.get("dtend").dt, where, "DTEND")
    elif event.get("duration") is not None:
        length = event.get("duration").dt
        if not isinstance(length, dt.timedelta):
            raise ToolFailure(f"{where}: DURATION is malformed")
        end = start + length
    if end is not None and not isinstance(start, dt.datetime) and not isinstance(end, dt.datetime):
        end = end - dt.timedelta(days=1)  # DTEND of an all-day event is exclusive; ours is the last day
    if end is not None and isinstance(start, dt.datetime) != isinstance(end, dt.datetime):
        raise ToolFailure(f"{where}: DTSTART and DTEND must both be dates or both date-times")
    rules = event.get("rrule")
    if isinstance(rules, list):
        raise ToolFailure(f"{where}: more than one RRULE")
    rule = rules.to_ical().decode() if rules is not None else None
    return ImportedEvent(uid, _clean(title), start, end, zone, rule, _clean(location), _clean(description), _exdates(event, where, zone))


def _exdates(event: icalendar.Event, where: str, zone: str) -> list[dt.datetime]:
    found = event.get("exdate")
    if found is None:
        return []
    tz = zoneinfo.ZoneInfo(zone)
    result: list[dt.datetime] = []
    for group in found if isinstance(found, list) else [found]:
        for item in group.dts:
            value = _when(item.dt, where, "EXDATE")
            if isinstance(value, dt.datetime):
                result.append(value if value.tzinfo else value.replace(tzinfo=tz))
            else:
                result.append(dt.datetime(value.year, value.month, value.day, tzinfo=tz))
    return result


def _when(value: Any, where: str, name: str) -> dt.date:
    if not isinstance(value, dt.date):
        raise ToolFailure(f"{where}: {name} must be a date or a date-time")
    moment = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
    naive = moment.replace(tzinfo=None)
    if not EARLIEST.replace(tzinfo=None) <= naive <= LATEST.replace(tzinfo=None):
        raise ToolFailure(f"{where}: {name} is outside the supported range (years {EARLIEST.year} to {LATEST.year})")
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value)


def _clean(text: str) -> str:
    return text.replace("\x00", "")


def _short(exc: object) -> str:
    return " ".join(str(exc).split())[:200]
