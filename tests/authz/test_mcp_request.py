"""The MCP call read from a request: routing headers, the JSON-RPC body (whole or cut), and their agreement."""

from __future__ import annotations

import base64
import json
import timeit
from typing import Any

import pytest

from authz_service import mcp_request
from authz_service.errors import InvalidRequest
from authz_service.mcp_request import BODY_BYTES, PARTIAL_BODY_HEADER, McpCall
from fakes import FakeProviders
from mcp_pa.core import contract
from tests.authz.conftest import AUTH0_AUDIENCE, RESOURCE_METADATA, AuthzClient, issuer
from tests.support.authz import Decision, check_request, decode


def tool_call(name: str, arguments: dict[str, Any] | None = None, **extra: Any) -> bytes:
    message = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}, **extra}
    return json.dumps(message).encode()


def test_tool_name_is_read_from_a_whole_body() -> None:
    assert mcp_request.of_request({}, tool_call("create_todo", {"title": "x"})) == McpCall("tools/call", "create_todo")


def test_resource_uri_is_read_for_resources_read() -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "pa://todos"}}).encode()
    assert mcp_request.of_request({}, body) == McpCall("resources/read", "pa://todos")


def test_cut_body_still_yields_method_and_name_before_the_cut() -> None:
    body = tool_call("upload_document", {"content": "x" * (3 * BODY_BYTES)})[:BODY_BYTES]
    assert mcp_request.of_request({PARTIAL_BODY_HEADER: "true"}, body) == McpCall("tools/call", "upload_document")


def test_full_size_body_is_read_as_cut_even_when_envoy_says_it_is_whole() -> None:
    # Envoy now and then sends x-envoy-auth-partial-body: false with a buffer filled to the limit.
    body = tool_call("upload_document", {"content": "x" * (3 * BODY_BYTES)})[:BODY_BYTES]
    assert mcp_request.of_request({PARTIAL_BODY_HEADER: "false"}, body) == McpCall("tools/call", "upload_document")


def test_cut_body_with_name_after_the_arguments_judges_the_header_name() -> None:
    body = json.dumps({"method": "tools/call", "params": {"arguments": {"c": "x" * BODY_BYTES}, "name": "create_todo"}}).encode()
    cut = body[:BODY_BYTES]
    assert mcp_request.of_request({PARTIAL_BODY_HEADER: "true"}, cut) == McpCall("tools/call", None)
    headers = {PARTIAL_BODY_HEADER: "true", contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "create_todo"}
    assert mcp_request.of_request(headers, cut) == McpCall("tools/call", "create_todo")


def test_cut_body_split_inside_a_multibyte_character_is_read() -> None:
    body = tool_call("create_document", {"content": "é" * BODY_BYTES})[: BODY_BYTES + 1]
    assert mcp_request.from_body(body, partial=True) == McpCall("tools/call", "create_document")


@pytest.mark.parametrize("body", [b"", b"not json", b"[" + tool_call("create_todo") + b"]", b'{"jsonrpc":"2.0","id":1,"result":{}}', b"\xff\xfe"])
def test_body_naming_no_call_falls_back_to_the_headers(body: bytes) -> None:
    assert mcp_request.of_request({}, body) is None
    headers = {contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "create_todo"}
    assert mcp_request.of_request(headers, body) == McpCall("tools/call", "create_todo")


def test_later_duplicate_key_wins_as_in_the_app() -> None:
    body = b'{"method":"tools/list","method":"tools/call","params":{"name":"whoami","name":"delete_todo"}}'
    assert mcp_request.from_body(body, partial=False) == McpCall("tools/call", "delete_todo")
    assert mcp_request.from_body(body, partial=True) == McpCall("tools/call", "delete_todo")


def test_headers_that_agree_with_the_body_are_accepted() -> None:
    headers = {contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "create_todo"}
    assert mcp_request.of_request(headers, tool_call("create_todo")) == McpCall("tools/call", "create_todo")


def test_base64_wrapped_name_header_is_compared_decoded() -> None:
    uri = "pa://documents/ünïcode"
    body = json.dumps({"method": "resources/read", "params": {"uri": uri}}).encode()
    wrapped = f"=?base64?{base64.b64encode(uri.encode()).decode()}?="
    headers = {contract.HEADER_MCP_METHOD: "resources/read", contract.HEADER_MCP_NAME: wrapped}
    assert mcp_request.of_request(headers, body) == McpCall("resources/read", uri)


@pytest.mark.parametrize(
    "headers",
    [
        {contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "whoami"},
        {contract.HEADER_MCP_METHOD: "tools/list"},
        {contract.HEADER_MCP_NAME: "create_todo"},
        {contract.HEADER_MCP_METHOD: "tools/call"},
        {contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "=?base64?!!?="},
    ],
)
def test_headers_that_disagree_with_the_body_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        mcp_request.of_request(headers, tool_call("create_todo"))


def _check_with_body(token: str, body: bytes, **headers: str) -> Any:
    request = check_request({"authorization": f"Bearer {token}", "content-type": "application/json", **headers})
    request.attributes.request.http.raw_body = body
    return request


async def _ask(authz: AuthzClient, token: str, body: bytes, **headers: str) -> Decision:
    return decode(await authz.stub.Check(_check_with_body(token, body, **headers), timeout=20))


async def test_2025_request_without_mcp_name_lacking_the_permission_is_403_with_the_tool_scope(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|reader", scope="openid mcp:read")
    d = await _ask(authz, token, tool_call("create_todo", {"title": "x"}), **{"mcp-protocol-version": "2025-11-25"})
    assert d.status == 403
    assert d.headers["www-authenticate"] == f'Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="{RESOURCE_METADATA}"'
    assert (await _ask(authz, token, tool_call("list_todos"))).allowed


async def test_headers_disagreeing_with_the_body_are_refused_with_400(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|writer", scope="openid mcp:read mcp:write")
    d = await _ask(authz, token, tool_call("create_todo"), **{"mcp-method": "tools/call", "mcp-name": "whoami"})
    assert d.status == 400
    assert d.body and d.body["error"] == "invalid_request" and "mcp-name" in d.body["error_description"]


async def test_cut_body_of_a_large_upload_is_judged_by_its_tool(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|reader", scope="openid mcp:read")
    body = tool_call("upload_document", {"content": "x" * (2 * BODY_BYTES)})[:BODY_BYTES]
    d = await _ask(authz, token, body, **{PARTIAL_BODY_HEADER: "true"})
    assert d.status == 403 and d.body and d.body["scope"] == "mcp:write"


def test_reading_a_call_costs_microseconds() -> None:
    # The hot path's extra work: a typical SDK tools/call body, with and without routing headers.
    body = tool_call("create_todo", {"title": "buy milk", "due": "2026-01-02"}, params_meta=None)
    headers = {contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "create_todo"}
    runs = 20000
    per_call = timeit.timeit(lambda: mcp_request.of_request(headers, body), number=runs) / runs
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} µs per request"
