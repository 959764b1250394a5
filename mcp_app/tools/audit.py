"""list_audit_events: the tenant's audit log (admin only; the RLS policy admits mcp.is_admin)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

from pydantic import Field

from mcp_app.tools.base import OUTCOME_DENIED, OUTCOME_ERROR, OUTCOME_SUCCESS, transaction
from mcp_app.tools.rows import out, utc


class Outcome(enum.StrEnum):
    """The outcome column of the audit log."""

    SUCCESS = OUTCOME_SUCCESS
    DENIED = OUTCOME_DENIED
    ERROR = OUTCOME_ERROR


AuditLimit = Annotated[int, Field(ge=1, le=500)]


async def list_audit_events(
    user_id: Annotated[str | None, Field(max_length=300)] = None,
    tool: Annotated[str | None, Field(max_length=100)] = None,
    outcome: Outcome | None = None,
    since: Annotated[dt.datetime | None, Field(description="ISO 8601 date-time (no zone = UTC)")] = None,
    limit: AuditLimit = 100,
) -> dict[str, Any]:
    """The tenant's audit log, newest first (needs admin)."""
    async with transaction() as tx:
        rows = await tx.conn.fetch(
            "SELECT * FROM audit_events WHERE ($1::text IS NULL OR user_id = $1) "
            "AND ($2::text IS NULL OR tool = $2) AND ($3::text IS NULL OR outcome = $3) "
            "AND ($4::timestamptz IS NULL OR at >= $4) ORDER BY at DESC, id DESC LIMIT $5",
            user_id,
            tool,
            outcome.value if outcome else None,
            utc(since) if since else None,
            limit,
        )
        return {"events": [out(r, exclude=()) for r in rows]}


TOOLS = [list_audit_events]
