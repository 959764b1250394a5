"""The MCP surface itself: tool descriptions, strict inputs, compact results, protocol errors, prompts, capabilities, /mcp over HTTP."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
from typing import Any, AsyncIterator

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_app.tools.registry import render
from mcp_pa.core import contract
from tests.app.conftest import RunningApp, new_tenant, person

JSON_RPC_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@contextlib.asynccontextmanager
async def connected(app: RunningApp, mode: str = "auto") -> AsyncIterator[Client]:
    """A real MCP client in one protocol era: 'auto' negotiates 2026-07-28, 'legacy' the 2025-11-25 handshake."""
    async with (
        httpx2.AsyncClient(headers=person(new_tenant()).to_headers(), timeout=30) as http,
        Client(streamable_http_client(f"{app.url}{contract.MCP_PATH}", http_client=http), cache=None, mode=mode) as client,  # type: ignore[arg-type]
    ):
        yield client


async def test_every_tool_has_a_title_annotations_a_strict_input_schema_and_a_real_output_schema(running_app: RunningApp) -> None:
    async with connected(running_app) as client:
        tools = (await client.list_tools()).tools
    assert {tool.name for tool in tools} == set(contract.TOOL_PERMISSIONS)
    for tool in tools:
        assert tool.title and tool.annotations and tool.annotations.title == tool.title, tool.name
        hints = tool.annotations
        assert None not in (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint), tool.name
        assert hints.open_world_hint is False, tool.name
        assert tool.input_schema.get("additionalProperties") is False, tool.name
        output = tool.output_schema or {}
        assert output.get("type") == "object" and output.get("properties"), f"{tool.name} has no output schema worth the name: {output}"


async def test_annotations_follow_the_permission_and_the_verb(running_app: RunningApp) -> None:
    async with connected(running_app) as client:
        hints = {tool.name: tool.annotations for tool in (await client.list_tools()).tools}
    for name, permission in contract.TOOL_PERMISSIONS.items():
        if permission == contract.PERMISSION_READ:
            assert hints[name].read_only_hint and not hints[name].destructive_hint, name
    assert hints["delete_todo"].destructive_hint and hints["delete_todo"].idempotent_hint and not hints["delete_todo"].read_only_hint
    assert not hints["create_todo"].destructive_hint and not hints["create_todo"].idempotent_hint
    assert hints["list_audit_events"].read_only_hint  # admin, but it only reads
    assert hints["whoami"].title == "Who am I"


async def test_unknown_arguments_are_refused_by_name(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        message = await tools.error("list_todos", offset=50)
    assert "offset: not an argument of list_todos (it takes: " in message and "limit" in message


async def test_validation_errors_are_plain_words_one_line_per_field(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        message = await tools.error("create_todo", title="x" * 201, priority="someday", colour="red")
    lines = message.splitlines()
    assert lines[0] == "invalid arguments for create_todo:"
    fields = sorted(line.split(":")[0] for line in lines[1:])
    assert fields == ["colour", "priority", "title"], message
    assert "pydantic" not in message and "https://" not in message and "x" * 201 not in message


async def test_results_carry_structured_content_and_compact_text(running_app: RunningApp, capsys: pytest.CaptureFixture[str]) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        for n in range(200):
            await tools.ok("create_todo", title=f"todo number {n}", notes="call the plumber about the kitchen sink")
        result = await tools.client.call_tool("list_todos", {"limit": 200})
    structured = result.structured_content
    assert structured is not None and len(structured["todos"]) == 200
    text = result.content[0].text
    assert json.loads(text) == structured and "\n" not in text and text == render(structured)
    pretty = json.dumps(structured, indent=2)
    with capsys.disabled():
        print(f"\n200 todos: text {len(text.encode())} bytes compact vs {len(pretty.encode())} pretty-printed")
    assert len(text) < 0.8 * len(pretty)


async def test_unknown_tool_is_a_json_rpc_invalid_params_error(running_app: RunningApp) -> None:
    async with connected(running_app) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("drop_database", {})
    assert refused.value.code == -32602 and "unknown tool 'drop_database'" in refused.value.message


async def test_prompts_are_listed_with_arguments_and_render(running_app: RunningApp) -> None:
    async with connected(running_app) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"daily_briefing", "weekly_review", "plan_project"}
        assert [(a.name, a.required) for a in prompts["plan_project"].arguments or []] == [("goal", True), ("deadline", False)]
        rendered = await client.get_prompt("plan_project", {"goal": "move flat", "deadline": "2026-09-01"})
    text = rendered.messages[0].content.text  # type: ignore[union-attr]
    assert "move flat by 2026-09-01" in text and "create_project" in text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_unknown_prompt_or_argument_is_invalid_params_without_an_error_log(
    running_app: RunningApp, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    async with connected(running_app, mode) as client:
        with caplog.at_level(logging.INFO), pytest.raises(MCPError) as unknown:
            await client.get_prompt("no_such_prompt", {})
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("plan_project", {})
        with pytest.raises(MCPError) as extra:
            await client.get_prompt("daily_briefing", {"mood": "grim"})
    assert unknown.value.code == -32602 and "unknown prompt 'no_such_prompt'" in unknown.value.message
    assert missing.value.code == -32602 and "goal: required" in missing.value.message
    assert extra.value.code == -32602 and "mood: not an argument of daily_briefing" in extra.value.message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("mode", "code"), [("legacy", -32002), ("auto", -32602)])
async def test_unknown_resource_gets_the_code_of_the_protocol_version(running_app: RunningApp, mode: str, code: int) -> None:
    async with connected(running_app, mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource("pa://nothing-here")
    assert refused.value.code == code


async def test_server_version_and_capabilities_are_the_same_in_every_era(running_app: RunningApp) -> None:
    async with connected(running_app, "legacy") as legacy, connected(running_app) as modern:
        assert legacy.protocol_version == "2025-11-25" and modern.protocol_version == "2026-07-28"
        handshake = legacy.session.server_capabilities.model_dump(exclude_none=True)
        discovered = modern.session.server_capabilities.model_dump(exclude_none=True)
        assert legacy.server_info.version == importlib.metadata.version("mcp-pa")
    assert handshake == discovered
    assert set(handshake) == {"tools", "resources", "prompts"}, handshake


async def _post(app: RunningApp, body: bytes) -> httpx2.Response:
    headers = {**JSON_RPC_HEADERS, **person(new_tenant()).to_headers(), "mcp-protocol-version": "2025-11-25"}
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(f"{app.url}{contract.MCP_PATH}", content=body, headers=headers)


async def test_get_mcp_is_405_because_the_server_offers_no_stream(running_app: RunningApp) -> None:
    async with httpx2.AsyncClient(headers=person(new_tenant()).to_headers(), timeout=5) as http:
        reply = await http.get(f"{running_app.url}{contract.MCP_PATH}", headers={"accept": "text/event-stream"})
    assert reply.status_code == 405 and reply.headers["allow"] == "POST"


async def test_a_batch_is_refused_as_an_invalid_request_in_a_short_message(running_app: RunningApp) -> None:
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}]
    reply = await _post(running_app, b"  " + json.dumps(batch).encode())
    assert reply.status_code == 400
    error: dict[str, Any] = reply.json()["error"]
    assert error == {"code": -32600, "message": "JSON-RPC batches are not supported: send one request per POST"}


async def test_a_single_request_still_passes_the_batch_check(running_app: RunningApp) -> None:
    reply = await _post(running_app, json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}).encode())
    assert reply.status_code == 200 and reply.json()["id"] == 7
