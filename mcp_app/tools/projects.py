"""Projects and their tasks: create, list, get, update, delete, add_project_task."""

from __future__ import annotations

import enum
from typing import Any

import asyncpg

from mcp_app.tools.base import transaction
from mcp_app.tools.inputs import DueDate, Limit, LongText, RowId, Title
from mcp_app.tools.rows import delete_row, fetch_owned, insert_row, out, update_row


class ProjectStatus(enum.StrEnum):
    """Where a project stands."""

    ACTIVE = "active"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    ARCHIVED = "archived"


async def fetch_projects(conn: asyncpg.Connection, status: ProjectStatus | None = None, limit: int = 50) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT p.*, (SELECT count(*) FROM project_tasks t WHERE t.project_id = p.id) AS task_count, "
        "(SELECT count(*) FROM project_tasks t WHERE t.project_id = p.id AND t.done) AS tasks_done "
        "FROM projects p WHERE ($1::text IS NULL OR p.status = $1) "
        "ORDER BY p.due_date NULLS LAST, p.created_at DESC LIMIT $2",
        status.value if status else None,
        limit,
    )
    return [out(r) for r in rows]


async def require_project(conn: asyncpg.Connection, project_id: RowId) -> asyncpg.Record:
    return await fetch_owned(conn, "projects", "project", project_id)


async def create_project(
    name: Title, description: LongText = "", status: ProjectStatus = ProjectStatus.ACTIVE, due_date: DueDate = None
) -> dict[str, Any]:
    """Start a project."""
    async with transaction() as tx:
        values = {"name": name, "description": description, "status": status.value, "due_date": due_date}
        return out(await insert_row(tx, "projects", values))


async def list_projects(status: ProjectStatus | None = None, limit: Limit = 50) -> dict[str, Any]:
    """Your projects, optionally by status, with task counts."""
    async with transaction() as tx:
        return {"projects": await fetch_projects(tx.conn, status, limit)}


async def get_project(project_id: RowId) -> dict[str, Any]:
    """One project with its tasks and open todos."""
    async with transaction() as tx:
        tx.target = str(project_id)
        project = out(await require_project(tx.conn, project_id))
        tasks = await tx.conn.fetch(
            "SELECT * FROM project_tasks WHERE project_id = $1 ORDER BY done, due_date NULLS LAST, created_at",
            project_id,
        )
        todos = await tx.conn.fetch(
            "SELECT * FROM todos WHERE project_id = $1 AND status <> 'done' ORDER BY due_date NULLS LAST", project_id
        )
        return {**project, "tasks": [out(t) for t in tasks], "todos": [out(t) for t in todos]}


async def update_project(
    project_id: RowId,
    name: Title | None = None,
    description: LongText | None = None,
    status: ProjectStatus | None = None,
    due_date: DueDate = None,
) -> dict[str, Any]:
    """Change a project's name, description, status or due date."""
    async with transaction() as tx:
        changes = {"name": name, "description": description, "status": status.value if status else None, "due_date": due_date}
        return out(await update_row(tx, "projects", "project", project_id, changes))


async def delete_project(project_id: RowId) -> dict[str, Any]:
    """Delete a project and its tasks (its todos stay, unlinked)."""
    return await delete_row("projects", "project", project_id)


async def add_project_task(project_id: RowId, title: Title, due_date: DueDate = None) -> dict[str, Any]:
    """Add a task to one of your projects."""
    async with transaction() as tx:
        tx.target = str(project_id)  # the audit row names the project the task went into
        await require_project(tx.conn, project_id)
        return out(await insert_row(tx, "project_tasks", {"project_id": project_id, "title": title, "due_date": due_date}))


TOOLS = [create_project, list_projects, get_project, update_project, delete_project, add_project_task]
