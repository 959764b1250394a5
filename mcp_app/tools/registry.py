"""Every tool by domain, registered on the MCPServer once the set matches the contract's permission table.

Adding a tool: write one typed async function in `tools/<domain>.py` (its docstring is the
tool's description), add it to that module's `TOOLS`, and give it a permission in
`mcp_pa.core.contract`; a tool without a permission, or a permission without a tool, stops
the app at start instead of surfacing as a call that nobody can make (or anybody can).
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Sequence

from mcp.server.mcpserver import MCPServer

from mcp_app.tools import audit, calendar, dashboard, documents, projects, status, todos, whoami
from mcp_pa.core import contract

ToolFunction = Callable[..., Awaitable[dict[str, Any]]]

DOMAINS = (whoami, status, projects, todos, calendar, documents, dashboard, audit)
ALL_TOOLS: tuple[ToolFunction, ...] = tuple(tool for domain in DOMAINS for tool in domain.TOOLS)


class ToolRegistryError(RuntimeError):
    """The tool functions disagree with `contract.TOOL_PERMISSIONS` (raised at start, never per call)."""


def check_against_contract(tools: Sequence[ToolFunction]) -> None:
    """Every tool has exactly one function, a description and a permission; ToolRegistryError naming each gap."""
    names = [tool.__name__ for tool in tools]
    problems: list[str] = []
    unknown = sorted(set(names) - set(contract.TOOL_PERMISSIONS))
    if unknown:
        problems.append(f"no permission in mcp_pa.core.contract for {', '.join(unknown)} (add each to READ_TOOLS, WRITE_TOOLS or ADMIN_TOOLS)")
    missing = sorted(set(contract.TOOL_PERMISSIONS) - set(names))
    if missing:
        problems.append(f"no function for contract tool(s) {', '.join(missing)} (add each to its domain's TOOLS list)")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f"registered more than once: {', '.join(duplicates)}")
    undescribed = sorted(tool.__name__ for tool in tools if not (tool.__doc__ or "").strip())
    if undescribed:
        problems.append(f"no docstring (the tool's description) on {', '.join(undescribed)}")
    if problems:
        raise ToolRegistryError("the tools do not match the contract: " + "; ".join(problems))


def register_tools(server: MCPServer, tools: Sequence[ToolFunction] = ALL_TOOLS) -> None:
    """Register each function as the tool of its name; the server's ToolGate guards every call."""
    check_against_contract(tools)
    for tool in tools:
        server.add_tool(tool, name=tool.__name__, description=inspect.cleandoc(tool.__doc__ or ""))
