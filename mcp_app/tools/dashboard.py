"""get_dashboard: status, active projects, todos due soon, upcoming events, newest documents."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field

from mcp_app.tools.base import transaction
from mcp_app.tools.calendar import fetch_events
from mcp_app.tools.documents import fetch_documents
from mcp_app.tools.projects import ProjectStatus, fetch_projects
from mcp_app.tools.status import fetch_status
from mcp_app.tools.todos import fetch_todos

DASHBOARD_ITEMS = 10
NEWEST_DOCUMENTS = 5


async def get_dashboard(days: Annotated[int, Field(ge=1, le=31)] = 7) -> dict[str, Any]:
    """One view of your day: status, active projects, todos due (and overdue) and events in the next days, newest documents."""
    async with transaction() as tx:
        now = dt.datetime.now(dt.timezone.utc)
        horizon = now + dt.timedelta(days=days)
        return {
            "generated_at": now.isoformat(),
            "days": days,
            "status": await fetch_status(tx.conn),
            "active_projects": await fetch_projects(tx.conn, ProjectStatus.ACTIVE, DASHBOARD_ITEMS),
            "todos_due": await fetch_todos(tx.conn, due_before=horizon.date(), limit=DASHBOARD_ITEMS * 2),
            "upcoming_events": await fetch_events(tx.conn, now, horizon, DASHBOARD_ITEMS * 2),
            "newest_documents": await fetch_documents(tx.conn, limit=NEWEST_DOCUMENTS),
        }


TOOLS = [get_dashboard]
