"""Projects and their tasks: create, list, get, update, delete; add, update, complete, delete a task."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import asyncpg

from mcp_app.tools import paging, times
from mcp_app.tools.base import NotFound, transaction
from mcp_app.tools.inputs import Cursor, DueDate, Limit, LongText, RowId, Title
from mcp_app.tools.rows import changes, delete_row, fetch_owned, insert_row, out, supplied, update_row

LISTING = "list_projects"
_KEY = (paging.DAY, paging.INSTANT, paging.ID)
# Due first (no due date last), then newest first; the id breaks ties so pages never overlap.
_SORT_DUE = "coalesce(p.due_date, 'infinity'::date)"


class ProjectStatus(enum.StrEnum):
    """Where a project stands."""

    ACTIVE = "active"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    ARCHIVED = "archived"


def shown(row: asyncpg.Record, tz: dt.tzinfo, *, done: bool, now: dt.datetime | None = None) -> dict[str, Any]:
    """A project or task row as output, with `overdue` for its due date."""
    return {**out(row, tz), "overdue": times.overdue(row["due_date"], row["due_at"], tz, done=done, now=now)}


async def fetch_projects(
    conn: asyncpg.Connection, tz: dt.tzinfo, status: ProjectStatus | None = None, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """One page of projects with task counts, and the cursor of the next."""
    after = paging.decode(cursor, LISTING, _KEY)
    rows = await conn.fetch(
        f"SELECT p.*, {_SORT_DUE} AS sort_due, (SELECT count(*) FROM project_tasks t WHERE t.project_id = p.id) AS task_count, "
        "(SELECT count(*) FROM project_tasks t WHERE t.project_id = p.id AND t.done) AS tasks_done "
        "FROM projects p WHERE ($1::text IS NULL OR p.status = $1) "
        f"AND ($2::date IS NULL OR {_SORT_DUE} > $2 OR ({_SORT_DUE} = $2 AND (p.created_at, p.id) < ($3::timestamptz, $4::uuid))) "
        f"ORDER BY {_SORT_DUE}, p.created_at DESC, p.id DESC LIMIT $5",
        status.value if status else None,
        *(after or (None, None, None)),
        limit + 1,
    )
    shown_rows, next_cursor = paging.page(LISTING, rows, limit, lambda r: (r["sort_due"], r["created_at"], r["id"]))
    done = {ProjectStatus.COMPLETED.value, ProjectStatus.ARCHIVED.value}
    projects = [{k: v for k, v in shown(r, tz, done=r["status"] in done).items() if k != "sort_due"} for r in shown_rows]
    return {"projects": projects, "next_cursor": next_cursor}


async def require_project(conn: asyncpg.Connection, project_id: RowId) -> asyncpg.Record:
    return await fetch_owned(conn, "projects", "project", project_id)


async def create_project(
    name: Title, description: LongText = "", status: ProjectStatus = ProjectStatus.ACTIVE, due_date: DueDate = None
) -> dict[str, Any]:
    """Start a project; its due date may be a day or a date-time."""
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        day, at = times.due(due_date, tz)
        values = {"name": name, "description": description, "status": status.value, "due_date": day, "due_at": at}
        return shown(await insert_row(tx, "projects", values), tz, done=False)


async def list_projects(status: ProjectStatus | None = None, limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    """Your projects, optionally by status, with task counts; pages with cursor/next_cursor."""
    async with transaction() as tx:
        return await fetch_projects(tx.conn, await times.caller_zone(tx.conn), status, limit, cursor)


async def get_project(project_id: RowId) -> dict[str, Any]:
    """One project with its tasks and open todos."""
    async with transaction() as tx:
        tx.target = str(project_id)
        return await project_detail(tx.conn, await times.caller_zone(tx.conn), project_id)


async def project_detail(conn: asyncpg.Connection, tz: dt.tzinfo, project_id: RowId) -> dict[str, Any]:
    """A project with its tasks and open todos (get_project and pa://projects/{id})."""
    project = await require_project(conn, project_id)
    tasks = await conn.fetch("SELECT * FROM project_tasks WHERE project_id = $1 ORDER BY done, due_date NULLS LAST, created_at, id", project_id)
    todos = await conn.fetch("SELECT * FROM todos WHERE project_id = $1 AND status <> 'done' ORDER BY due_date NULLS LAST, created_at, id", project_id)
    return {
        **shown(project, tz, done=project["status"] in ("completed", "archived")),
        "tasks": [shown(t, tz, done=t["done"]) for t in tasks],
        "todos": [shown(t, tz, done=False) for t in todos],
    }


async def update_project(
    project_id: RowId,
    name: Title | None = None,
    description: LongText | None = None,
    status: ProjectStatus | None = None,
    due_date: DueDate = None,
) -> dict[str, Any]:
    """Change a project's name, description, status or due date; null clears description or due_date, omitted fields stay."""
    given = supplied()
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        fields = changes(
            given,
            {"name": name, "description": description, "status": status.value if status else None, "due_date": due_date},
            required=("name", "status"),
            blank={"description": ""},
        )
        if "due_date" in fields:
            fields["due_date"], fields["due_at"] = times.due(fields["due_date"], tz)
        row = await update_row(tx, "projects", "project", project_id, fields)
        return shown(row, tz, done=row["status"] in ("completed", "archived"))


async def delete_project(project_id: RowId) -> dict[str, Any]:
    """Delete a project and its tasks (its todos stay, unlinked)."""
    return await delete_row("projects", "project", project_id)


async def add_project_task(project_id: RowId, title: Title, due_date: DueDate = None) -> dict[str, Any]:
    """Add a task to one of your projects; its due date may be a day or a date-time."""
    async with transaction() as tx:
        tx.target = str(project_id)  # the audit row names the project the task went into
        tz = await times.caller_zone(tx.conn)
        await require_project(tx.conn, project_id)
        day, at = times.due(due_date, tz)
        row = await insert_row(tx, "project_tasks", {"project_id": project_id, "title": title, "due_date": day, "due_at": at})
        return shown(row, tz, done=False)


async def update_project_task(task_id: RowId, title: Title | None = None, due_date: DueDate = None, done: bool | None = None) -> dict[str, Any]:
    """Change a project task's title, due date or done state; null clears due_date, omitted fields stay."""
    given = supplied()
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        fields = changes(given, {"title": title, "due_date": due_date, "done": done}, required=("title", "done"))
        if "due_date" in fields:
            fields["due_date"], fields["due_at"] = times.due(fields["due_date"], tz)
        row = await update_row(tx, "project_tasks", "project task", task_id, fields)
        if "done" in fields:
            # completed_at follows done: set once when it becomes done, cleared when reopened.
            row = await tx.conn.fetchrow(
                "UPDATE project_tasks SET completed_at = CASE WHEN done THEN coalesce(completed_at, now()) END WHERE id = $1 RETURNING *",
                task_id,
            )
        return shown(row, tz, done=row["done"])


async def complete_project_task(task_id: RowId) -> dict[str, Any]:
    """Mark a project task done."""
    async with transaction() as tx:
        tx.target = str(task_id)
        tz = await times.caller_zone(tx.conn)
        row = await tx.conn.fetchrow(
            "UPDATE project_tasks SET done = true, completed_at = coalesce(completed_at, now()), updated_at = now() WHERE id = $1 RETURNING *",
            task_id,
        )
        if row is None:
            raise NotFound("project task", task_id)
        return shown(row, tz, done=True)


async def delete_project_task(task_id: RowId) -> dict[str, Any]:
    """Delete a task from its project."""
    return await delete_row("project_tasks", "project task", task_id)


TOOLS = [
    create_project,
    list_projects,
    get_project,
    update_project,
    delete_project,
    add_project_task,
    update_project_task,
    complete_project_task,
    delete_project_task,
]
