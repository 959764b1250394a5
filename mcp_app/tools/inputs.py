"""Input types the tool domains share; their limits become the tools' JSON schemas."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field

TITLE_MAX_CHARS = 200
LONG_TEXT_MAX_CHARS = 5000

Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX_CHARS)]
"""A name or title: required, one line's worth."""

ShortText = Annotated[str, Field(max_length=TITLE_MAX_CHARS)]
"""Optional text as long as a title (a location, say); empty is fine."""

LongText = Annotated[str, Field(max_length=LONG_TEXT_MAX_CHARS)]
"""Notes or a description; empty is fine."""

DueDate = Annotated[dt.date | None, Field(description="ISO 8601 date, e.g. 2026-12-31")]
"""A day without a time; None means no due date."""

When = Annotated[dt.datetime, Field(description="ISO 8601 date-time, e.g. 2026-12-01T09:30:00+01:00 (no zone = UTC)")]
"""A point in time; naive input is taken as UTC (see rows.utc)."""

RowId = Annotated[uuid.UUID, Field(description="The id returned when the item was created (a UUID)")]
"""The id of one of the caller's rows."""

Limit = Annotated[int, Field(ge=1, le=200, description="At most this many items")]
"""How many rows a list tool returns."""
