"""The tool registry: the registered tools and the contract's tool → permission table agree, or the app does not start."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from mcp_app.app import build_mcp_server
from mcp_app.db import Database
from mcp_app.tools import todos
from mcp_app.tools.base import Toolbox, ToolFailure
from mcp_app.tools.registry import ALL_TOOLS, ToolRegistryError, build_tools, check_against_contract
from mcp_pa.core import contract

# Never connected: building the server opens no connection.
UNUSED_DSN = "postgresql://nobody@127.0.0.1:1/none"


async def archive_todo() -> dict[str, Any]:
    """A tool the contract has never heard of."""
    return {}


async def undocumented() -> dict[str, Any]:
    return {}


def test_every_contract_tool_has_exactly_one_function() -> None:
    names = [tool.__name__ for tool in ALL_TOOLS]
    assert sorted(names) == sorted(contract.TOOL_PERMISSIONS)
    check_against_contract(ALL_TOOLS)


async def test_registered_tools_are_described_by_their_docstrings() -> None:
    server = build_mcp_server(Toolbox(Database(UNUSED_DSN)))
    listed = {tool.name: tool.description for tool in await server.list_tools()}
    assert listed["create_todo"] == "Add a todo, optionally with a due date, priority and project."
    assert listed["upload_document"].startswith("Upload a file as base64 (at most 5 MB decoded). Allowed content types: text/plain,")
    assert set(listed) == set(contract.TOOL_PERMISSIONS)


async def test_a_tool_missing_from_the_contract_stops_start() -> None:
    server = MCPServer("test")
    with pytest.raises(ToolRegistryError, match=r"no permission in mcp_pa.core.contract for archive_todo \(add each to READ_TOOLS"):
        build_tools([*ALL_TOOLS, archive_todo])
    assert await server.list_tools() == []  # nothing half-registered


async def test_a_contract_tool_without_a_function_stops_start() -> None:
    server = MCPServer("test")
    without_delete = [tool for tool in ALL_TOOLS if tool is not todos.delete_todo]
    with pytest.raises(ToolRegistryError, match=r"no function for contract tool\(s\) delete_todo \(add each to its domain's TOOLS list\)"):
        build_tools(without_delete)
    assert await server.list_tools() == []


def test_building_the_server_fails_when_the_contract_names_a_tool_nobody_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contract, "TOOL_PERMISSIONS", {**contract.TOOL_PERMISSIONS, "archive_todo": contract.PERMISSION_WRITE})
    with pytest.raises(ToolRegistryError, match="no function for contract tool\\(s\\) archive_todo"):
        build_mcp_server(Toolbox(Database(UNUSED_DSN)))


def test_building_the_server_fails_when_a_tool_has_no_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    without_whoami = {name: needed for name, needed in contract.TOOL_PERMISSIONS.items() if name != "whoami"}
    monkeypatch.setattr(contract, "TOOL_PERMISSIONS", without_whoami)
    with pytest.raises(ToolRegistryError, match="no permission in mcp_pa.core.contract for whoami"):
        build_mcp_server(Toolbox(Database(UNUSED_DSN)))


def test_a_tool_registered_twice_stops_start() -> None:
    with pytest.raises(ToolRegistryError, match="registered more than once: create_todo"):
        check_against_contract([*ALL_TOOLS, todos.create_todo])


def test_a_tool_without_a_description_stops_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contract, "TOOL_PERMISSIONS", {**contract.TOOL_PERMISSIONS, "undocumented": contract.PERMISSION_READ})
    with pytest.raises(ToolRegistryError, match="no docstring \\(the tool's description\\) on undocumented"):
        check_against_contract([*ALL_TOOLS, undocumented])


async def test_a_tool_body_reached_outside_the_gate_is_refused() -> None:
    with pytest.raises(ToolFailure, match="no authenticated caller"):
        await todos.list_todos()
