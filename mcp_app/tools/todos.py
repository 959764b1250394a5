"""Todos: create, list (paged), get, update, complete, delete."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import asyncpg

from mcp_app.tools import paging, times
from mcp_app.tools.base import NotFound, transaction
from mcp_app.tools.inputs import Cursor, Day, DueDate, Limit, LongText, RowId, Title
from mcp_app.tools.projects import require_project, shown
from mcp_app.tools.rows import changes, delete_row, fetch_owned, insert_row, supplied, update_row


class Priority(enum.StrEnum):
    """How urgent a todo is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class TodoStatus(enum.StrEnum):
    """Where a todo stands; complete_todo sets `done`."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"


LISTING = "list_todos"
_KEY = (paging.DAY, paging.INTEGER, paging.INSTANT, paging.ID)
# Soonest due first (no due date last), then the most urgent, then oldest; the id breaks ties.
_SORT = "coalesce(due_date, 'infinity'::date), array_position(ARRAY['urgent','high','medium','low'], priority), created_at, id"


def todo_out(row: asyncpg.Record, tz: dt.tzinfo, now: dt.datetime | None = None) -> dict[str, Any]:
    return {k: v for k, v in shown(row, tz, done=row["status"] == TodoStatus.DONE.value, now=now).items() if not k.startswith("sort_")}


async def fetch_todos(
    conn: asyncpg.Connection,
    tz: dt.tzinfo,
    status: TodoStatus | None = None,
    priority: Priority | None = None,
    due_before: dt.date | None = None,
    project_id: RowId | None = None,
    include_done: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of todos in the stable order, and the cursor of the next."""
    after = paging.decode(cursor, LISTING, _KEY)
    rows = await conn.fetch(
        "SELECT *, coalesce(due_date, 'infinity'::date) AS sort_due, "
        "array_position(ARRAY['urgent','high','medium','low'], priority) AS sort_priority FROM todos "
        "WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR priority = $2) "
        "AND ($3::date IS NULL OR due_date <= $3) AND ($4::uuid IS NULL OR project_id = $4) "
        "AND ($5 OR $1::text IS NOT NULL OR status <> 'done') "
        f"AND ($6::date IS NULL OR ({_SORT}) > ($6::date, $7::int, $8::timestamptz, $9::uuid)) "
        f"ORDER BY {_SORT} LIMIT $10",
        status.value if status else None,
        priority.value if priority else None,
        due_before,
        project_id,
        include_done,
        *(after or (None, None, None, None)),
        limit + 1,
    )
    page, next_cursor = paging.page(LISTING, rows, limit, lambda r: (r["sort_due"], r["sort_priority"], r["created_at"], r["id"]))
    now = dt.datetime.now(dt.timezone.utc)
    return {"todos": [todo_out(r, tz, now) for r in page], "next_cursor": next_cursor}


async def create_todo(
    title: Title,
    notes: LongText = "",
    priority: Priority = Priority.MEDIUM,
    due_date: DueDate = None,
    project_id: RowId | None = None,
) -> dict[str, Any]:
    """Add a todo, optionally with a due date, priority and project."""
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        if project_id is not None:
            await require_project(tx.conn, project_id)
        day, at = times.due(due_date, tz)
        values = {"title": title, "notes": notes, "priority": priority.value, "due_date": day, "due_at": at, "project_id": project_id}
        return todo_out(await insert_row(tx, "todos", values), tz)


async def list_todos(
    status: TodoStatus | None = None,
    priority: Priority | None = None,
    due_before: Day | None = None,
    project_id: RowId | None = None,
    include_done: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Your todos, soonest due first; done ones only when asked (status=done or include_done). Pages with cursor/next_cursor."""
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        return await fetch_todos(tx.conn, tz, status, priority, due_before, project_id, include_done, limit, cursor)


async def get_todo(todo_id: RowId) -> dict[str, Any]:
    """One todo."""
    async with transaction() as tx:
        tx.target = str(todo_id)
        return todo_out(await fetch_owned(tx.conn, "todos", "todo", todo_id), await times.caller_zone(tx.conn))


async def update_todo(
    todo_id: RowId,
    title: Title | None = None,
    notes: LongText | None = None,
    priority: Priority | None = None,
    status: TodoStatus | None = None,
    due_date: DueDate = None,
    project_id: RowId | None = None,
) -> dict[str, Any]:
    """Change a todo; null clears notes, due_date or project_id, omitted fields stay."""
    given = supplied()
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        fields = changes(
            given,
            {
                "title": title,
                "notes": notes,
                "priority": priority.value if priority else None,
                "status": status.value if status else None,
                "due_date": due_date,
                "project_id": project_id,
            },
            required=("title", "priority", "status"),
            blank={"notes": ""},
        )
        if "due_date" in fields:
            fields["due_date"], fields["due_at"] = times.due(fields["due_date"], tz)
        if fields.get("project_id") is not None:
            await require_project(tx.conn, fields["project_id"])
        row = await update_row(tx, "todos", "todo", todo_id, fields)
        if "status" in fields:
            # completed_at follows the status: "done" always has a time, reopening clears it.
            row = await tx.conn.fetchrow(
                "UPDATE todos SET completed_at = CASE WHEN status = 'done' THEN coalesce(completed_at, now()) END "
                "WHERE id = $1 RETURNING *",
                todo_id,
            )
        return todo_out(row, tz)


async def complete_todo(todo_id: RowId) -> dict[str, Any]:
    """Mark a todo done."""
    async with transaction() as tx:
        tx.target = str(todo_id)
        row = await tx.conn.fetchrow(
            "UPDATE todos SET status = 'done', completed_at = coalesce(completed_at, now()), updated_at = now() "
            "WHERE id = $1 RETURNING *",
            todo_id,
        )
        if row is None:
            raise NotFound("todo", todo_id)
        return todo_out(row, await times.caller_zone(tx.conn))


async def delete_todo(todo_id: RowId) -> dict[str, Any]:
    """Delete a todo."""
    return await delete_row("todos", "todo", todo_id)


TOOLS = [create_todo, list_todos, get_todo, update_todo, complete_todo, delete_todo]
