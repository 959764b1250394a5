"""Projects and their tasks: create, list, get, update, delete, add_project_task."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import asyncpg
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from mcp_app.tools.base import Limit, NotFound, RowId, Toolbox, delete_owned, fetch_owned, out, update_by_id


class ProjectStatus(enum.StrEnum):
    """Where a project stands."""

    ACTIVE = "active"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    ARCHIVED = "archived"


Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=5000)]
DueDate = Annotated[dt.date | None, Field(description="ISO 8601 date, e.g. 2026-12-31")]


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


def register(server: MCPServer, box: Toolbox) -> None:
    @server.tool(name="create_project", description="Start a project.")
    async def create_project(
        name: Name, description: Description = "", status: ProjectStatus = ProjectStatus.ACTIVE, due_date: DueDate = None
    ) -> dict[str, Any]:
        async with box.call() as tx:
            row = await tx.conn.fetchrow(
                "INSERT INTO projects (name, description, status, due_date) VALUES ($1, $2, $3, $4) RETURNING *",
                name,
                description,
                status.value,
                due_date,
            )
            tx.target = str(row["id"])
            return out(row)

    @server.tool(name="list_projects", description="Your projects, optionally by status, with task counts.")
    async def list_projects(status: ProjectStatus | None = None, limit: Limit = 50) -> dict[str, Any]:
        async with box.call() as tx:
            return {"projects": await fetch_projects(tx.conn, status, limit)}

    @server.tool(name="get_project", description="One project with its tasks and open todos.")
    async def get_project(project_id: RowId) -> dict[str, Any]:
        async with box.call() as tx:
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

    @server.tool(name="update_project", description="Change a project's name, description, status or due date.")
    async def update_project(
        project_id: RowId,
        name: Name | None = None,
        description: Description | None = None,
        status: ProjectStatus | None = None,
        due_date: DueDate = None,
    ) -> dict[str, Any]:
        async with box.call() as tx:
            tx.target = str(project_id)
            changes = {"name": name, "description": description, "status": status.value if status else None, "due_date": due_date}
            row = await update_by_id(tx.conn, "projects", project_id, changes)
            if row is None:
                raise NotFound("project", project_id)
            return out(row)

    @server.tool(name="delete_project", description="Delete a project and its tasks (its todos stay, unlinked).")
    async def delete_project(project_id: RowId) -> dict[str, Any]:
        return await delete_owned(box, "projects", "project", project_id)

    @server.tool(name="add_project_task", description="Add a task to one of your projects.")
    async def add_project_task(
        project_id: RowId, title: Name, due_date: DueDate = None
    ) -> dict[str, Any]:
        async with box.call() as tx:
            tx.target = str(project_id)
            await require_project(tx.conn, project_id)
            row = await tx.conn.fetchrow(
                "INSERT INTO project_tasks (project_id, title, due_date) VALUES ($1, $2, $3) RETURNING *",
                project_id,
                title,
                due_date,
            )
            return out(row)
