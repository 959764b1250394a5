"""The personal-assistant tools, one module per domain, registered on one MCPServer."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from mcp_app.tools import audit, calendar, dashboard, documents, projects, status, todos, whoami
from mcp_app.tools.base import Toolbox

DOMAINS = (whoami, status, projects, todos, calendar, documents, dashboard, audit)


def register_all(server: MCPServer, box: Toolbox) -> None:
    for domain in DOMAINS:
        domain.register(server, box)
