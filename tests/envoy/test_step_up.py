"""Step-up at the edge through a real Envoy: the authz service reads the tool from the body Envoy sends.

A 2025-era client names the tool only in the JSON-RPC body; a read-only caller must still get HTTP
403 insufficient_scope (so it can ask for the wider scope), headers that disagree with the body get
400, and uploads up to the body limit still reach the app whole.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import yaml

from authz_service.mcp_request import BODY_BYTES
from authz_service.providers.apikey import key_hash
from mcp_pa.core import contract
from mcp_pa.up.certs import DevCerts
from tests.envoy.conftest import TEST_ID_HEADER, EchoUpstream, new_test_id
from tests.support.processes import free_port
from tests.support.stack import Authz, Envoy, Reply, start_authz, start_envoy

READER = "mcp_sk_step_up_reader_0123456789abcdef0123"
WRITER = "mcp_sk_step_up_writer_0123456789abcdef0123"
UPLOAD_BYTES = 8 * 1024 * 1024 - 4096  # just under the 8 MiB body limit


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory, dev_certs: DevCerts, echo_upstream: EchoUpstream) -> Iterator[Envoy]:
    keys = tmp_path_factory.mktemp("keys") / "keys.yaml"
    records = [
        {"id": "reader", "sha256": key_hash(READER), "tenant": "acme", "permissions": ["read"]},
        {"id": "writer", "sha256": key_hash(WRITER), "tenant": "acme", "permissions": ["read", "write"]},
    ]
    keys.write_text(yaml.safe_dump({"keys": records}))
    https_port = free_port()
    authz: Authz = start_authz(tmp_path_factory.mktemp("authz"), free_port(), f"https://localhost:{https_port}", {"MCP_HTTP_API_KEYS_FILE": str(keys)})
    try:
        proxy = start_envoy(tmp_path_factory.mktemp("envoy"), dev_certs, https_port=https_port, authz_port=authz.port, app_port=echo_upstream.port)
        yield proxy
        proxy.stop()
    finally:
        authz.stop()


def _call(name: str, arguments: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}).encode()


def _post(envoy: Envoy, key: str, body: bytes, **headers: str) -> tuple[Reply, str]:
    test_id = new_test_id()
    sent = {TEST_ID_HEADER: test_id, "x-api-key": key, "content-type": "application/json", "mcp-protocol-version": "2025-11-25", **headers}
    return envoy.request("POST", contract.MCP_PATH, sent, body), test_id


def test_2025_request_without_mcp_name_lacking_the_permission_is_403_with_the_tool_scope(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    reply, test_id = _post(envoy, READER, _call("create_todo", {"title": "x"}))
    assert reply.status == 403
    assert reply.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="{envoy.public_url}{contract.PRM_MCP_PATH}"'
    )
    assert json.loads(reply.body)["scope"] == "mcp:write"
    assert echo_upstream.seen(test_id) == []


def test_2025_request_the_caller_may_make_reaches_the_app_with_its_body(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    body = _call("list_todos")
    reply, test_id = _post(envoy, READER, body)
    assert reply.status == 200
    assert [r["body_length"] for r in echo_upstream.seen(test_id)] == [len(body)]


def test_mcp_name_disagreeing_with_the_body_is_refused_with_400(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    reply, test_id = _post(envoy, WRITER, _call("create_todo"), **{"mcp-method": "tools/call", "mcp-name": "whoami"})
    assert reply.status == 400
    assert json.loads(reply.body)["error"] == "invalid_request"
    assert echo_upstream.seen(test_id) == []


def test_upload_near_the_body_limit_reaches_the_app_whole(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    body = _call("upload_document", {"title": "big", "content": "x" * UPLOAD_BYTES})
    reply, test_id = _post(envoy, WRITER, body)
    assert reply.status == 200, reply.body[:300]
    assert [r["body_length"] for r in echo_upstream.seen(test_id)] == [len(body)]


def test_large_upload_by_a_reader_is_judged_by_its_tool_before_the_app(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    reply, test_id = _post(envoy, READER, _call("upload_document", {"title": "big", "content": "x" * (4 * BODY_BYTES)}))
    assert reply.status == 403 and json.loads(reply.body)["scope"] == "mcp:write"
    assert echo_upstream.seen(test_id) == []
