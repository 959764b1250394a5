"""RFC 5545 recurrence for events: check an RRULE, and expand it inside a window in the event's zone."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo
from typing import Iterator, Sequence

from dateutil.rrule import rrule, rrulestr

from mcp_app.tools.base import ToolFailure

# The most occurrences one event yields in one window (an hourly rule over a year is 8,784).
MAX_OCCURRENCES = 10_000
_TOO_FINE = ("SECONDLY", "MINUTELY")
_UNTIL_UTC = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)


def normalise(text: str) -> str:
    """The rule as stored: one line, upper case, without the `RRULE:` prefix."""
    rule = text.strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[len("RRULE:") :]
    return rule.strip().upper()


def _local(rule: str, tz: dt.tzinfo) -> str:
    # dateutil wants UNTIL in the same form as DTSTART; events expand in naive wall time of their
    # zone (which is what keeps 09:00 at 09:00 across a DST change), so a UTC UNTIL becomes local.
    def convert(match: re.Match[str]) -> str:
        instant = dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
        return "UNTIL=" + instant.astimezone(tz).strftime("%Y%m%dT%H%M%S")

    return _UNTIL_UTC.sub(convert, rule)


def parse(text: str, start: dt.datetime, tz: dt.tzinfo, *, field: str = "recurrence") -> rrule:
    """The rule for an event starting at `start` (aware) in zone tz; ToolFailure naming the field otherwise."""
    rule = normalise(text)
    if not rule.startswith("FREQ=") and ";FREQ=" not in rule:
        raise ToolFailure(f"{field}: an RRULE needs FREQ, for example FREQ=WEEKLY;BYDAY=MO or RRULE:FREQ=DAILY;COUNT=5")
    if any(ch in rule for ch in "\r\n:"):
        raise ToolFailure(f"{field}: give one RRULE line only (EXDATE and the like are separate)")
    if any(f"FREQ={freq}" in rule for freq in _TOO_FINE):
        raise ToolFailure(f"{field}: events repeat at most hourly; FREQ=SECONDLY and FREQ=MINUTELY are not supported")
    dtstart = start.astimezone(tz).replace(tzinfo=None)
    try:
        parsed = rrulestr("RRULE:" + _local(rule, tz), dtstart=dtstart)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ToolFailure(f"{field}: not a valid RFC 5545 RRULE ({str(exc)[:120]})") from exc
    if not isinstance(parsed, rrule):
        raise ToolFailure(f"{field}: give one RRULE only")
    if parsed.after(dtstart, inc=True) is None:
        raise ToolFailure(f"{field}: the rule yields no occurrence")
    return parsed


def occurrences(
    rule_text: str,
    start: dt.datetime,
    duration: dt.timedelta,
    zone_name: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    exdates: Sequence[dt.datetime] = (),
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """(start, end) of each occurrence overlapping [window_start, window_end), minus EXDATEs, as aware instants.

    `duration` is wall-clock time in the event's zone (wall_duration)."""
    tz = zoneinfo.ZoneInfo(zone_name)
    rule = parse(rule_text, start, tz)
    skipped = {e.astimezone(dt.timezone.utc) for e in exdates}
    # Naive bounds in the event's zone, a day wider than needed (DST, long events); exact below.
    low = (window_start - duration).astimezone(tz).replace(tzinfo=None) - dt.timedelta(days=1)
    high = window_end.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=1)
    for wall in itertools.islice(rule.xafter(low, inc=True), MAX_OCCURRENCES):
        if wall > high:
            break
        begins = wall.replace(tzinfo=tz)
        if begins.astimezone(dt.timezone.utc) in skipped:
            continue
        ends = _end(begins, duration, tz)
        if begins < window_end and (ends > window_start or begins >= window_start):
            yield begins, ends


def _end(begins: dt.datetime, duration: dt.timedelta, tz: dt.tzinfo) -> dt.datetime:
    # The duration is wall-clock time in the event's zone, so an all-day event ends at the next
    # local midnight even on a 23-hour day, and 09:00-10:00 stays that on every date.
    return (begins.replace(tzinfo=None) + duration).replace(tzinfo=tz)


def wall_duration(starts_at: dt.datetime, ends_at: dt.datetime, tz: dt.tzinfo) -> dt.timedelta:
    """How long an event lasts on the wall clock of its zone."""
    return ends_at.astimezone(tz).replace(tzinfo=None) - starts_at.astimezone(tz).replace(tzinfo=None)


def is_occurrence(rule_text: str, start: dt.datetime, zone_name: str, when: dt.datetime) -> bool:
    """Whether the rule has an occurrence starting exactly at `when`."""
    tz = zoneinfo.ZoneInfo(zone_name)
    wall = when.astimezone(tz).replace(tzinfo=None)
    found = parse(rule_text, start, tz).after(wall, inc=True)
    return bool(found == wall)
