"""list_audit_events: the tenant's audit log (admin only; the RLS policy admits mcp.is_admin)."""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import Field

from mcp_app.tools import paging, times
from mcp_app.tools.base import OUTCOME_DENIED, OUTCOME_ERROR, OUTCOME_SUCCESS, transaction
from mcp_app.tools.inputs import Cursor, Instant
from mcp_app.tools.rows import out

LISTING = "list_audit_events"
_KEY = (paging.INSTANT, paging.INTEGER)


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
    since: Instant | None = None,
    limit: AuditLimit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The tenant's audit log, newest first (needs admin); pages with cursor/next_cursor."""
    after = paging.decode(cursor, LISTING, _KEY)
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        rows = await tx.conn.fetch(
            "SELECT * FROM audit_events WHERE ($1::text IS NULL OR user_id = $1) "
            "AND ($2::text IS NULL OR tool = $2) AND ($3::text IS NULL OR outcome = $3) "
            "AND ($4::timestamptz IS NULL OR at >= $4) "
            "AND ($5::timestamptz IS NULL OR (at, id) < ($5::timestamptz, $6::bigint)) ORDER BY at DESC, id DESC LIMIT $7",
            user_id,
            tool,
            outcome.value if outcome else None,
            times.aware(since, tz) if since else None,
            *(after or (None, None)),
            limit + 1,
        )
        page, next_cursor = paging.page(LISTING, rows, limit, lambda r: (r["at"], r["id"]))
        return {"events": [out(r, tz, exclude=()) for r in page], "next_cursor": next_cursor}


TOOLS = [list_audit_events]
