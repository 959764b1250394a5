"""Input types the tool domains share; their limits become the tools' JSON schemas."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

TITLE_MAX_CHARS = 200
LONG_TEXT_MAX_CHARS = 5000
CURSOR_MAX_CHARS = 1000
# Times outside these years are refused at the door: PostgreSQL and the Python clock disagree
# about the far ends (year 1, 9999 plus an offset), and no personal plan lives there.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(2999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


def _in_range(value: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        try:
            instant = value if value.tzinfo is None else value.astimezone(dt.timezone.utc)
        except OverflowError:
            instant = EARLIEST - dt.timedelta(days=1)  # reported below as out of range
        moment = instant.replace(tzinfo=None)
    else:
        moment = dt.datetime(value.year, value.month, value.day)
    if not EARLIEST.replace(tzinfo=None) <= moment <= LATEST.replace(tzinfo=None):
        raise ValueError(f"is outside the supported range (years {EARLIEST.year} to {LATEST.year})")
    return value


def _date_or_datetime(value: Any) -> Any:
    # "2026-03-08" is a day (an all-day event, a due date); anything with a time is an instant.
    # pydantic alone would turn a date-only string into midnight, or midnight into a date.
    if isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return value  # pydantic words the error
    return value


Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX_CHARS), AfterValidator(_not_blank)]
"""A name or title: required, one line's worth, not only whitespace."""

ShortText = Annotated[str, Field(max_length=TITLE_MAX_CHARS)]
"""Optional text as long as a title (a location, say); empty is fine."""

LongText = Annotated[str, Field(max_length=LONG_TEXT_MAX_CHARS)]
"""Notes or a description; empty is fine."""

Instant = Annotated[
    dt.datetime,
    AfterValidator(_in_range),
    Field(description="ISO 8601 date-time, e.g. 2026-12-01T09:30:00+01:00 (no offset = your time zone)"),
]
"""A point in time; naive input is taken in the caller's zone (times.aware)."""

When = Annotated[
    dt.datetime | dt.date,
    BeforeValidator(_date_or_datetime),
    AfterValidator(_in_range),
    Field(description="ISO 8601 date-time with offset, e.g. 2026-12-01T09:30:00+01:00 (no offset = your time zone), or a date for all day"),
]
"""An event's start or end: an instant, or a date for an all-day event."""

DueDate = Annotated[
    dt.datetime | dt.date | None,
    BeforeValidator(_date_or_datetime),
    AfterValidator(lambda v: v if v is None else _in_range(v)),
    Field(description="ISO 8601 date (2026-12-31) or date-time with offset (2026-12-31T17:00:00+01:00)"),
]
"""A due day, optionally with a time; None means no due date (and clears it in update tools)."""

Day = Annotated[dt.date, BeforeValidator(_date_or_datetime), AfterValidator(_in_range), Field(description="ISO 8601 date, e.g. 2026-12-31")]
"""A calendar day in the caller's zone."""

RowId = Annotated[uuid.UUID, Field(description="The id returned when the item was created (a UUID)")]
"""The id of one of the caller's rows."""

Limit = Annotated[int, Field(ge=1, le=200, description="At most this many items per page")]
"""How many rows a list tool returns per page."""

Cursor = Annotated[str | None, Field(max_length=CURSOR_MAX_CHARS, description="next_cursor of the previous page; omit for the first")]
"""Where a page starts: the opaque next_cursor of the page before."""

SearchQuery = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
"""What to search for: words, "phrases", -excluded, or."""
