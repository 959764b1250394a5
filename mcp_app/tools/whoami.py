"""whoami: the caller as the app sees it (identity headers from the authz service)."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from mcp_app.tools.base import Toolbox


def register(server: MCPServer, box: Toolbox) -> None:
    @server.tool(name="whoami", description="Who you are signed in as: user id, tenant, permissions, provider.")
    async def whoami() -> dict[str, Any]:
        async with box.call() as tx:
            me = tx.identity
            return {
                "user_id": me.user_id,
                "tenant_id": me.tenant_id,
                "permissions": sorted(me.permissions),
                "provider": me.provider,
                "email": me.email,
                "name": me.name,
            }
