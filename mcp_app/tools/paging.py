"""Opaque cursors for keyset paging: every list pages on (its sort key, id) so no row is lost or repeated.

A cursor is base64url JSON naming the list it belongs to and the sort key of the last row on the
page; it is a position, never a secret, so it is not signed, only checked for shape.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Any, Callable, Sequence

from mcp_app.tools.base import ToolFailure

Decoder = Callable[[Any], Any]


def _instant(value: Any) -> dt.datetime:
    result = dt.datetime.fromisoformat(value)
    if result.tzinfo is None:
        raise ValueError("naive time in cursor")
    return result


def _day(value: Any) -> dt.date:
    return dt.date.fromisoformat(value)


def _number(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError("not a number")
    return float(value)


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("not an integer")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


# The types a sort key may hold, by the name the list gives for each position.
INSTANT: Decoder = _instant
DAY: Decoder = _day
NUMBER: Decoder = _number
INTEGER: Decoder = _integer
TEXT: Decoder = _text
ID: Decoder = uuid.UUID


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode(listing: str, key: Sequence[Any]) -> str:
    """The cursor that resumes `listing` after the row whose sort key is `key`."""
    raw = json.dumps([listing, [_plain(v) for v in key]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str | None, listing: str, types: Sequence[Decoder]) -> list[Any] | None:
    """The sort key a cursor resumes after (None for the first page); ToolFailure for a bad cursor."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, key = json.loads(raw)
        if name != listing:
            raise ToolFailure(f"cursor: this cursor belongs to {str(name)[:50]}, not {listing}; pass the next_cursor {listing} returned")
        if not isinstance(key, list) or len(key) != len(types):
            raise ValueError("wrong shape")
        return [decode_one(value) for decode_one, value in zip(types, key, strict=True)]
    except ToolFailure:
        raise
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ToolFailure(f"cursor: not a cursor of {listing}; pass next_cursor from the previous page unchanged, or omit it for the first page") from exc


def page(listing: str, rows: Sequence[Any], limit: int, key: Callable[[Any], Sequence[Any]]) -> tuple[list[Any], str | None]:
    """The first `limit` rows (fetched as limit + 1) and the cursor after them; None when nothing follows."""
    shown = list(rows[:limit])
    if len(rows) <= limit or not shown:
        return shown, None
    return shown, encode(listing, key(shown[-1]))
