"""whoami: the caller as the app sees it (identity headers from the authz service)."""

from __future__ import annotations

from typing import Any

from mcp_app.tools import times
from mcp_app.tools.base import transaction


async def whoami() -> dict[str, Any]:
    """Who you are signed in as: user id, tenant, permissions, provider, and your time zone."""
    async with transaction() as tx:
        me = tx.identity
        return {
            "user_id": me.user_id,
            "tenant_id": me.tenant_id,
            "permissions": sorted(me.permissions),
            "provider": me.provider,
            "email": me.email,
            "name": me.name,
            "timezone": str(await times.caller_zone(tx.conn)),
        }


TOOLS = [whoami]
