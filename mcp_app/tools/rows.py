"""Row helpers every tool domain uses: create, fetch, update, delete one row, and rows as output.

Table and column names come from the tool code, never from input; RLS and the tenant search
path decide which rows exist, so another tenant's or user's id is "not found".
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Collection, Mapping

import asyncpg

from mcp_app.tools.base import NotFound, ToolFailure, Tx, current_call, transaction

# Columns that are the database's business: the owner, and the search vectors.
HIDDEN = ("owner_id", "keywords", "search")
UTC = dt.timezone.utc


def show(value: Any, tz: dt.tzinfo = UTC) -> Any:
    """One value as JSON-friendly output: ids as strings, instants in tz with their offset, days as dates."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(tz).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [show(v, tz) for v in value]
    return value


def out(record: Mapping[str, Any], tz: dt.tzinfo = UTC, *, exclude: tuple[str, ...] = HIDDEN) -> dict[str, Any]:
    """A database row as JSON-friendly output, its times in the caller's zone tz."""
    return {key: show(value, tz) for key, value in record.items() if key not in exclude}


def supplied() -> frozenset[str]:
    """The argument names the caller actually sent: an update tool tells `null` (clear) from omitted (keep)."""
    return frozenset(current_call().arguments)


def changes(
    given: Collection[str],
    values: Mapping[str, Any],
    *,
    required: Collection[str] = (),
    blank: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields the caller sent: an explicit None clears (to NULL, or the column's blank), a required field cannot be cleared."""
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name not in given:
            continue
        if value is None:
            if name in required:
                raise ToolFailure(f"{name}: cannot be cleared (it is required); give a new value, or omit it to keep it")
            value = (blank or {}).get(name)
        result[name] = value
    return result


async def insert_row(tx: Tx, table: str, values: Mapping[str, Any], *, returning: str = "*") -> asyncpg.Record:
    """Insert one row; it becomes the audit target unless the tool already named one (a task's project)."""
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await tx.conn.fetchrow(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING {returning}", *values.values())
    if tx.target is None:
        tx.target = str(row["id"])
    return row


async def fetch_owned(conn: asyncpg.Connection, table: str, kind: str, item_id: uuid.UUID) -> asyncpg.Record:
    """The caller's row; NotFound otherwise (also the guard for foreign keys, which bypass RLS)."""
    row = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1", item_id)
    if row is None:
        raise NotFound(kind, item_id)
    return row


async def update_row(tx: Tx, table: str, kind: str, item_id: uuid.UUID, changes: Mapping[str, Any]) -> asyncpg.Record:
    """Apply the changes (None sets NULL) to the caller's row (the audit target); NotFound when it does not exist."""
    tx.target = str(item_id)
    fields = dict(changes)
    if not fields:
        raise ToolFailure("nothing to update: give at least one field to change")
    assignments = [f"{column} = ${i}" for i, column in enumerate(fields, start=2)] + ["updated_at = now()"]
    row = await tx.conn.fetchrow(f"UPDATE {table} SET {', '.join(assignments)} WHERE id = $1 RETURNING *", item_id, *fields.values())
    if row is None:
        raise NotFound(kind, item_id)
    return row


async def delete_row(table: str, kind: str, item_id: uuid.UUID) -> dict[str, Any]:
    """The whole body of a delete tool: one audited transaction, NotFound when nothing matched."""
    async with transaction() as tx:
        tx.target = str(item_id)
        if await tx.conn.fetchval(f"DELETE FROM {table} WHERE id = $1 RETURNING true", item_id) is None:
            raise NotFound(kind, item_id)
        return {"deleted": str(item_id)}
