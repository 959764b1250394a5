"""get_dashboard: status, active projects, todos due soon, upcoming events, newest documents, in the caller's local days."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field

from mcp_app.tools import times
from mcp_app.tools.base import transaction
from mcp_app.tools.calendar import fetch_events
from mcp_app.tools.documents import fetch_documents
from mcp_app.tools.projects import ProjectStatus, fetch_projects
from mcp_app.tools.status import fetch_status
from mcp_app.tools.todos import fetch_todos

DASHBOARD_ITEMS = 10
NEWEST_DOCUMENTS = 5


async def get_dashboard(days: Annotated[int, Field(ge=1, le=31)] = 7) -> dict[str, Any]:
    """One view of your days (in your time zone, today first): status, active projects, todos due (and overdue), events, newest documents."""
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        now = dt.datetime.now(dt.timezone.utc)
        today = times.today(tz, now)
        last_day = today + dt.timedelta(days=days - 1)
        # Local midnights, so an evening event at -05:00 stays on its own day and a DST change
        # never shifts the window by an hour.
        window_start, window_end = times.midnight(today, tz), times.midnight(last_day + dt.timedelta(days=1), tz)
        return {
            "generated_at": now.astimezone(tz).isoformat(),
            "timezone": str(tz),
            "today": today.isoformat(),
            "days": days,
            "status": await fetch_status(tx.conn, tz),
            "active_projects": (await fetch_projects(tx.conn, tz, ProjectStatus.ACTIVE, DASHBOARD_ITEMS))["projects"],
            "todos_due": (await fetch_todos(tx.conn, tz, due_before=last_day, limit=DASHBOARD_ITEMS * 2))["todos"],
            "upcoming_events": (await fetch_events(tx.conn, tz, window_start, window_end, DASHBOARD_ITEMS * 2))["events"],
            "newest_documents": (await fetch_documents(tx.conn, tz, limit=NEWEST_DOCUMENTS))["documents"],
        }


TOOLS = [get_dashboard]
