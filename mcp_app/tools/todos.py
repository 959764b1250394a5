"""Todos: create, list, update, complete, delete."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from mcp_app.tools.base import NotFound, transaction
from mcp_app.tools.inputs import DueDate, Limit, LongText, RowId, Title
from mcp_app.tools.projects import require_project
from mcp_app.tools.rows import delete_row, insert_row, out, update_row


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


_ORDER = "ORDER BY due_date NULLS LAST, array_position(ARRAY['urgent','high','medium','low'], priority), created_at"


async def fetch_todos(
    conn: asyncpg.Connection,
    status: TodoStatus | None = None,
    priority: Priority | None = None,
    due_before: dt.date | None = None,
    project_id: RowId | None = None,
    include_done: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM todos WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR priority = $2) "
        "AND ($3::date IS NULL OR due_date <= $3) AND ($4::uuid IS NULL OR project_id = $4) "
        f"AND ($5 OR $1::text IS NOT NULL OR status <> 'done') {_ORDER} LIMIT $6",
        status.value if status else None,
        priority.value if priority else None,
        due_before,
        project_id,
        include_done,
        limit,
    )
    return [out(r) for r in rows]


async def create_todo(
    title: Title,
    notes: LongText = "",
    priority: Priority = Priority.MEDIUM,
    due_date: DueDate = None,
    project_id: RowId | None = None,
) -> dict[str, Any]:
    """Add a todo, optionally with a due date, priority and project."""
    async with transaction() as tx:
        if project_id is not None:
            await require_project(tx.conn, project_id)
        values = {"title": title, "notes": notes, "priority": priority.value, "due_date": due_date, "project_id": project_id}
        return out(await insert_row(tx, "todos", values))


async def list_todos(
    status: TodoStatus | None = None,
    priority: Priority | None = None,
    due_before: Annotated[dt.date | None, Field(description="ISO 8601 date; due on or before")] = None,
    project_id: RowId | None = None,
    include_done: bool = False,
    limit: Limit = 50,
) -> dict[str, Any]:
    """Your todos; done ones only when asked (status=done or include_done)."""
    async with transaction() as tx:
        return {"todos": await fetch_todos(tx.conn, status, priority, due_before, project_id, include_done, limit)}


async def update_todo(
    todo_id: RowId,
    title: Title | None = None,
    notes: LongText | None = None,
    priority: Priority | None = None,
    status: TodoStatus | None = None,
    due_date: DueDate = None,
) -> dict[str, Any]:
    """Change a todo's title, notes, priority, status or due date."""
    async with transaction() as tx:
        changes: dict[str, Any] = {
            "title": title,
            "notes": notes,
            "priority": priority.value if priority else None,
            "status": status.value if status else None,
            "due_date": due_date,
        }
        row = await update_row(tx, "todos", "todo", todo_id, changes)
        if status is not None:
            # completed_at follows the status: "done" always has a time, reopening clears it.
            row = await tx.conn.fetchrow(
                "UPDATE todos SET completed_at = CASE WHEN status = 'done' THEN coalesce(completed_at, now()) END "
                "WHERE id = $1 RETURNING *",
                todo_id,
            )
        return out(row)


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
        return out(row)


async def delete_todo(todo_id: RowId) -> dict[str, Any]:
    """Delete a todo."""
    return await delete_row("todos", "todo", todo_id)


TOOLS = [create_todo, list_todos, update_todo, complete_todo, delete_todo]
