"""Real MCP clients against the whole stack from `mcp-pa up` (PostgreSQL, authz, app, Envoy + TLS).

The official Python SDK client runs `mcp-pa connect` as a stdio server, exactly as Claude Desktop
would; the MCP Inspector's CLI mode talks Streamable HTTP to Envoy with an API key header.
"""

from __future__ import annotations

import json
import os
import shlex
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Callable

import httpx2
import pytest
from mcp import Client
from mcp.client.auth.utils import (
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
    handle_protected_resource_response,
)
from mcp.client.stdio import StdioServerParameters

from mcp_pa import connect
from mcp_pa.core import contract
from tests.clients.conftest import AUTH0_DOMAIN, Stack, request, run_bridge, tool_call
from tests.support.processes import REPO

DOCS = REPO / "docs" / "clients.md"
DOC_URL = "https://mcp.example.com/mcp"


def _claude_desktop_entry(stack: Stack) -> StdioServerParameters:
    """The Claude Desktop entry exactly as docs/clients.md shows it, with the local-stack changes it names.

    Like Claude Desktop, the SDK starts the command with a minimal environment plus the entry's `env`.
    """
    section = DOCS.read_text().split("## Claude Desktop", 1)[1]
    entry = json.loads(section.split("```json", 1)[1].split("```", 1)[0])["mcpServers"]["mcp-pa"]
    assert entry["args"][:2] == ["connect", DOC_URL] and list(entry["env"]) == ["MCP_PA_API_KEY"]
    return StdioServerParameters(
        command=str(Path(sys.prefix) / "bin" / "mcp-pa"),  # "/absolute/path/to/mcp-pa/.venv/bin/mcp-pa"
        args=[stack.url if a == DOC_URL else a for a in entry["args"]] + ["--ca", str(stack.ca)],
        env={"MCP_PA_API_KEY": stack.api_key},
    )


def _token_command_entry(stack: Stack) -> StdioServerParameters:
    # The stack also accepts its API key as a bearer token, so a command printing it is a real token source.
    key_file = stack.ca.parent.parent / "api-key"
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_pa", "connect", stack.url, "--token-command", shlex.join(["cat", str(key_file)]),
              "--ca", str(stack.ca)],
        cwd=REPO,
    )


@pytest.mark.parametrize(
    ("mode", "entry"), [("auto", _claude_desktop_entry), ("legacy", _token_command_entry)], ids=["docs-api-key", "token-command"]
)
async def test_sdk_client_over_stdio_lists_and_calls_tools_through_the_whole_stack(
    stack: Stack, mode: str, entry: Callable[[Stack], StdioServerParameters]
) -> None:
    async with Client(entry(stack), mode=mode, cache=None, read_timeout_seconds=60) as client:
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == set(contract.TOOL_PERMISSIONS)
        me = await client.call_tool("whoami", {})
        assert me.structured_content is not None
        assert me.structured_content["user_id"] == "apikey:default"
        made = await client.call_tool("create_todo", {"title": f"bridge {mode}"})
        assert not made.is_error, made.content
        todos = await client.call_tool("list_todos", {})
        assert f"bridge {mode}" in json.dumps(todos.structured_content)


def test_the_real_front_door_denials_reach_the_client_as_readable_errors(stack: Stack) -> None:
    read_only = run_bridge(
        stack.url, "--api-key-env", "PA_KEY", "--ca", str(stack.ca),
        env={"PA_KEY": stack.read_only_key},
        messages=[tool_call(1, "create_todo", {"title": "not allowed"}), tool_call(2, "whoami")],
    )
    answers = read_only.by_id()
    denied = answers[1]["error"]
    assert denied["code"] == connect.FORBIDDEN and "mcp:write" in denied["message"]
    assert denied["data"]["error"] == "insufficient_scope"
    assert answers[2]["result"]["structuredContent"]["permissions"] == [contract.PERMISSION_READ]
    read_only.assert_secret_absent(stack.read_only_key)

    wrong = run_bridge(
        stack.url, "--api-key-env", "PA_KEY", "--ca", str(stack.ca),
        env={"PA_KEY": contract.API_KEY_PREFIX + "not-a-real-key-0123456789abcdef"},
        messages=[request(1, "tools/list")],
    )
    error = wrong.by_id()[1]["error"]
    assert error["code"] == connect.UNAUTHORIZED and "HTTP 401" in error["message"]
    assert error["data"]["resource_metadata"].endswith(contract.PRM_MCP_PATH)


def test_without_the_dev_ca_the_bridge_says_the_certificate_is_not_trusted(stack: Stack) -> None:
    run = run_bridge(stack.url, "--api-key-env", "PA_KEY", env={"PA_KEY": stack.api_key}, messages=[request(1, "tools/list")])
    error = run.by_id()[1]["error"]
    assert "CERTIFICATE_VERIFY_FAILED" in error["message"] and "--ca" in error["message"]
    run.assert_secret_absent(stack.api_key)


def _inspector(inspector: Path, stack: Stack, api_key: str, *method: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npx", "--no", "--", "@modelcontextprotocol/inspector", "--cli", stack.url, "--transport", "http",
         "--header", f"{contract.HEADER_API_KEY}: {api_key}", "--method", *method],
        cwd=inspector,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(stack.ca), "NO_UPDATE_NOTIFIER": "1"},
        capture_output=True, text=True, timeout=90,
    )


def test_inspector_cli_lists_tools_and_calls_one_through_envoy_with_an_api_key(inspector: Path, stack: Stack) -> None:
    listed = _inspector(inspector, stack, stack.api_key, "tools/list")
    assert listed.returncode == 0, listed.stderr
    assert {t["name"] for t in json.loads(listed.stdout)["tools"]} == set(contract.TOOL_PERMISSIONS)

    called = _inspector(inspector, stack, stack.api_key, "tools/call", "--tool-name", "whoami")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"]["user_id"] == "apikey:default"


def test_inspector_cli_with_a_wrong_key_is_refused(inspector: Path, stack: Stack) -> None:
    refused = _inspector(inspector, stack, contract.API_KEY_PREFIX + "wrong-key-0123456789abcdef", "tools/list")
    assert refused.returncode != 0
    assert "invalid_token" in refused.stdout + refused.stderr


async def test_an_oauth_client_finds_the_authorization_server_from_the_401(stack: Stack) -> None:
    """The discovery steps of docs/clients.md, done with the SDK's own OAuth discovery helpers."""
    async with httpx2.AsyncClient(verify=ssl.create_default_context(cafile=str(stack.ca)), timeout=30) as http:
        denied = await http.post(stack.url, json=request(1, "tools/list"), headers={"accept": connect.ACCEPT})
        assert denied.status_code == 401
        advertised = extract_resource_metadata_from_www_auth(denied)
        assert advertised == stack.url.removesuffix(contract.MCP_PATH) + contract.PRM_MCP_PATH
        first = build_protected_resource_metadata_discovery_urls(advertised, stack.url)[0]
        metadata = await handle_protected_resource_response(await http.get(first))
    assert metadata is not None
    assert str(metadata.resource) == stack.url
    assert [str(s) for s in metadata.authorization_servers] == [f"https://{AUTH0_DOMAIN}/"]
    assert metadata.scopes_supported == list(contract.SCOPES)
