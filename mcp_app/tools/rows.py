"""Row helpers every tool domain uses: create, fetch, update, delete one row, and rows as output.

Table and column names come from the tool code, never from input; RLS and the tenant search
path decide which rows exist, so another tenant's or user's id is "not found".
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Mapping

import asyncpg

from mcp_app.tools.base import NotFound, ToolFailure, Tx, transaction


def out(record: Mapping[str, Any], *, exclude: tuple[str, ...] = ("owner_id",)) -> dict[str, Any]:
    """A database row as JSON-friendly output (ids and times as strings)."""
    result: dict[str, Any] = {}
    for key, value in record.items():
        if key in exclude:
            continue
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, (dt.datetime, dt.date)):
            value = value.isoformat()
        elif isinstance(value, list):
            value = list(value)
        result[key] = value
    return result


def utc(value: dt.datetime) -> dt.datetime:
    """A datetime with a zone; naive input is taken as UTC (documented in docs/app.md)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


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
    """Apply the non-None changes to the caller's row (the audit target); NotFound when it does not exist."""
    tx.target = str(item_id)
    fields = {k: v for k, v in changes.items() if v is not None}
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
