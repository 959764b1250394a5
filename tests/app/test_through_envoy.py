"""A set of tools through the real front door: Envoy (TLS) → authz service (gRPC) → the app.

Credentials: the single API key, and OIDC ID tokens signed by a fake issuer on loopback (the
only fake here). The app is the session's uvicorn server; Envoy routes to its port.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from fakes import FakeIssuer, FakeProviders
from mcp_pa.core import contract
from mcp_pa.up.certs import ensure_dev_certs
from tests.app.conftest import RunningApp, Tools
from tests.support.processes import free_port
from tests.support.stack import Authz, Envoy, start_authz, start_envoy

API_KEY = "mcp_sk_through_envoy_test_key_0123456789"
OIDC_AUDIENCE = "mcp-pa"
READ_ONLY_DOMAIN, READ_ONLY_TENANT = "readers.test", "readers"


class FrontDoor:
    """Envoy + authz in front of the session's app, plus the fake OIDC issuer."""

    def __init__(self, envoy: Envoy, authz: Authz, issuer: FakeIssuer) -> None:
        self.envoy = envoy
        self.authz = authz
        self.issuer = issuer

    def id_token(self, email: str, sub: str) -> str:
        return self.issuer.mint(OIDC_AUDIENCE, sub=sub, email=email, email_verified=True)

    def http(self, headers: dict[str, str]) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, verify=ssl.create_default_context(cafile=str(self.envoy.ca_cert)), timeout=30)

    @contextlib.asynccontextmanager
    async def client(self, headers: dict[str, str]) -> AsyncIterator[Tools]:
        async with self.http(headers) as http:
            transport = streamable_http_client(f"{self.envoy.public_url}{contract.MCP_PATH}", http_client=http)
            async with Client(transport, cache=None) as client:
                yield Tools(client)


@pytest.fixture(scope="module")
def front_door(running_app: RunningApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    directory: Path = tmp_path_factory.mktemp("through_envoy")
    certs = ensure_dev_certs(directory / "tls")
    tenants_file = directory / "tenants.yaml"
    tenants_file.write_text(
        json.dumps(
            {"domains": {READ_ONLY_DOMAIN: READ_ONLY_TENANT}, "tenants": {READ_ONLY_TENANT: {"default_permissions": ["read"]}}}
        )
    )
    app_port = int(running_app.url.rsplit(":", 1)[1])
    with FakeProviders() as fake:
        issuer = fake.issuer("/oidc")
        authz_port = free_port()
        envoy = start_envoy(directory / "envoy", certs, authz_port=authz_port, app_port=app_port)
        env = {
            "MCP_HTTP_API_KEY": API_KEY,
            # The corp issuer is the domains' own IdP: only such an issuer places users in a domain tenant.
            "MCP_HTTP_OIDC_PROVIDERS": json.dumps(
                [{"name": "corp", "issuer": issuer.issuer, "audience": OIDC_AUDIENCE, "domains": ["acme.test", READ_ONLY_DOMAIN]}]
            ),
            "MCP_HTTP_TENANTS_FILE": str(tenants_file),
        }
        try:
            authz = start_authz(directory / "authz", authz_port, envoy.public_url, env)
        except BaseException:
            envoy.stop()
            raise
        try:
            yield FrontDoor(envoy, authz, issuer)
        finally:
            authz.stop()
            envoy.stop()


async def test_api_key_caller_runs_tools_through_envoy(front_door: FrontDoor) -> None:
    async with front_door.client({contract.HEADER_API_KEY: API_KEY}) as tools:
        me = await tools.ok("whoami")
        assert (me["user_id"], me["tenant_id"], me["provider"]) == ("apikey:default", "default", "apikey")
        assert me["permissions"] == ["admin", "read", "write"]
        todo = await tools.ok("create_todo", title="through the front door", priority="high")
        assert todo["id"] in [t["id"] for t in (await tools.ok("list_todos"))["todos"]]
        await tools.ok("complete_todo", todo_id=todo["id"])
        document = await tools.ok("create_document", title="edge note", content="envoy sidecar pattern")
        found = await tools.ok("search_documents", query="sidecar")
        assert document["id"] in [r["id"] for r in found["results"]]
        board = await tools.ok("get_dashboard")
        assert "active_projects" in board
        audit = (await tools.ok("list_audit_events", tool="create_todo"))["events"]
        assert audit and audit[0]["target_id"] == todo["id"] and audit[0]["request_id"]  # Envoy's x-request-id


async def test_spoofed_identity_headers_never_reach_the_app(front_door: FrontDoor) -> None:
    spoof = {contract.HEADER_USER_ID: "google:victim", contract.HEADER_TENANT_ID: "victim", contract.HEADER_PERMISSIONS: "admin,read,write"}
    async with front_door.client({contract.HEADER_API_KEY: API_KEY, **spoof}) as tools:
        me = await tools.ok("whoami")
    assert (me["user_id"], me["tenant_id"]) == ("apikey:default", "default")


async def test_provider_token_users_share_a_tenant_but_not_rows(front_door: FrontDoor) -> None:
    ann = {"authorization": f"Bearer {front_door.id_token('ann@acme.test', 'ann-1')}"}
    ben = {"authorization": f"Bearer {front_door.id_token('ben@acme.test', 'ben-2')}"}
    async with front_door.client(ann) as tools:
        me = await tools.ok("whoami")
        assert (me["user_id"], me["tenant_id"], me["email"]) == ("oidc-corp:ann-1", "acme_test", "ann@acme.test")
        project = await tools.ok("create_project", name="ann's plan")
        await tools.ok("add_project_task", project_id=project["id"], title="step one")
        await tools.ok("create_calendar_event", title="ann's meeting", starts_at="2031-01-01T09:00:00Z")
    async with front_door.client(ben) as tools:
        assert (await tools.ok("whoami"))["tenant_id"] == "acme_test"
        assert (await tools.ok("list_projects"))["projects"] == []
        assert "not found" in await tools.error("get_project", project_id=project["id"])
    async with front_door.client(ann) as tools:
        assert [t["title"] for t in (await tools.ok("get_project", project_id=project["id"]))["tasks"]] == ["step one"]


async def test_read_only_provider_user_cannot_write_through_envoy(front_door: FrontDoor) -> None:
    cat = {"authorization": f"Bearer {front_door.id_token(f'cat@{READ_ONLY_DOMAIN}', 'cat-3')}"}
    async with front_door.client(cat) as tools:
        me = await tools.ok("whoami")
        assert (me["tenant_id"], me["permissions"]) == (READ_ONLY_TENANT, ["read"])
        # The SDK client names the tool in Mcp-Method/Mcp-Name, so the edge refuses it (HTTP 403,
        # which the client reports as an MCPError); the app would refuse it as well.
        with pytest.raises(MCPError):
            await tools.client.call_tool("create_todo", {"title": "should not exist"})
        assert (await tools.ok("list_todos"))["todos"] == []
    async with front_door.http(cat) as http:
        response = await http.post(
            f"{front_door.envoy.public_url}{contract.MCP_PATH}",
            headers={contract.HEADER_MCP_METHOD: "tools/call", contract.HEADER_MCP_NAME: "create_todo"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "create_todo", "arguments": {"title": "x"}}},
        )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_request_without_credential_gets_401_with_resource_metadata(front_door: FrontDoor) -> None:
    async with front_door.http({}) as http:
        response = await http.post(
            f"{front_door.envoy.public_url}{contract.MCP_PATH}", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        )
        metadata = await http.get(f"{front_door.envoy.public_url}{contract.PRM_MCP_PATH}")
    assert response.status_code == 401
    assert "resource_metadata=" in response.headers["www-authenticate"]
    assert metadata.status_code == 200 and metadata.json()["scopes_supported"] == list(contract.SCOPES)
