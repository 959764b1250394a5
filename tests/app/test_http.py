"""The HTTP surface: PRM JSON, health and readiness, metrics, Host checks, first-use schema creation,
`mcp-pa db migrate` and `mcp-pa app` as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import asyncpg
import httpx2
import pytest
from starlette.testclient import TestClient

from mcp_app.app import create_app, protected_resource_metadata
from mcp_app.db import Database, load_migrations, migrate_schema
from mcp_pa.core import contract
from tests.app.conftest import RunningApp, app_settings, new_tenant, person
from tests.support.processes import free_port, listening, mcp_pa_command


@pytest.mark.parametrize(("path", "resource"), [(contract.PRM_PATH, "https://mcp.example.com"), (contract.PRM_MCP_PATH, "https://mcp.example.com/mcp")])
async def test_protected_resource_metadata_is_public_names_the_resource_and_allows_cors(running_app: RunningApp, path: str, resource: str) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.get(f"{running_app.url}{path}", headers={"origin": "https://app.example"})
        preflight = await http.options(f"{running_app.url}{path}", headers={"origin": "https://app.example", "access-control-request-method": "GET"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert preflight.status_code == 204 and "GET" in preflight.headers["access-control-allow-methods"]
    assert response.status_code == 200
    assert response.json() == {
        "resource": resource,
        "authorization_servers": [],
        "scopes_supported": ["mcp:read", "mcp:write", "mcp:admin"],
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-pa",
    }


def test_protected_resource_metadata_lists_every_configured_provider() -> None:
    settings = app_settings(
        "postgresql://unused.invalid/x",
        google_client_id="123.apps.googleusercontent.com",
        auth0_domain="acme.eu.auth0.com",
        oidc_providers=json.dumps([{"name": "corp", "issuer": "https://sso.corp.example/realms/staff", "audience": "mcp"}]),
        github_enabled=True,
        github_client_id="Iv1.abc",
        github_client_secret="shh",
    )
    # Auth0 and OIDC first: SDK clients use the first server, and Google has no dynamic registration.
    assert protected_resource_metadata(settings)["authorization_servers"] == [
        "https://acme.eu.auth0.com/",
        "https://sso.corp.example/realms/staff",
        "https://accounts.google.com",
        "https://github.com/login/oauth",
    ]
    chosen = app_settings("postgresql://unused.invalid/x", google_client_id="123", auth0_domain="acme.eu.auth0.com",
                          github_enabled=True, github_client_id="Iv1.abc", github_client_secret="shh",
                          github_api_url="https://ghe.corp.example/api/v3", authorization_servers="github,auth0")
    assert protected_resource_metadata(chosen)["authorization_servers"] == ["https://ghe.corp.example/login/oauth", "https://acme.eu.auth0.com/"]


async def test_health_readiness_and_metrics_answer_without_identity(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        await tools.ok("whoami")
    async with httpx2.AsyncClient() as http:
        health = await http.get(f"{running_app.url}/healthz")
        ready = await http.get(f"{running_app.url}/readyz")
        metrics = await http.get(f"{running_app.url}/metrics")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert metrics.status_code == 200
    assert 'mcp_app_tool_calls_total{outcome="success",tool="whoami"}' in metrics.text


def test_readiness_is_503_when_the_database_is_unreachable() -> None:
    port = free_port()  # nothing listens here
    settings = app_settings(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    database = Database(settings.database_connection_string or "")
    with TestClient(create_app(settings, database)) as client:  # starts although the database is down
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
    assert (response.status_code, response.json()["status"]) == (503, "unavailable")

@pytest.mark.parametrize(
    "extra, status",
    [
        ({"host": "evil.example:8443"}, 421),
        ({"host": "mcp.example.com"}, 200),
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "https://mcp.example.com"}, 200),
    ],
)
async def test_host_and_origin_are_checked_against_the_public_url(
    running_app: RunningApp, extra: dict[str, str], status: int
) -> None:
    headers = {**person(new_tenant()).to_headers(), "accept": "application/json, text/event-stream", **extra}
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{running_app.url}/mcp", headers=headers, json=body)
    assert response.status_code == status, response.text


async def test_twenty_concurrent_first_requests_create_the_tenant_schema_once(running_app: RunningApp) -> None:
    tenant = new_tenant()

    async def first_call(i: int) -> dict:
        async with running_app.client(person(tenant, f"user{i}")) as tools:
            return await tools.ok("create_todo", title=f"first {i}")

    results = await asyncio.gather(*(first_call(i) for i in range(20)))
    assert len({r["id"] for r in results}) == 20
    async with running_app.database.pool.acquire() as conn:
        versions = await conn.fetch(f'SELECT version FROM "tenant_{tenant}".schema_migrations')
        count = await conn.fetchval(f'SELECT count(*) FROM "tenant_{tenant}".todos')
    assert [r["version"] for r in versions] == [m.version for m in load_migrations()]
    assert count == 20


async def test_concurrent_replicas_migrate_a_new_schema_exactly_once(pg_dsn: str) -> None:
    tenant = new_tenant()
    migrations = load_migrations()
    connections = [await asyncpg.connect(pg_dsn) for _ in range(20)]  # as if 20 replicas raced
    try:
        applied = await asyncio.gather(*(migrate_schema(conn, tenant, migrations) for conn in connections))
    finally:
        await asyncio.gather(*(conn.close() for conn in connections))
    assert sorted(applied, key=len, reverse=True) == [[m.version for m in migrations]] + [[]] * 19


async def test_db_migrate_command_upgrades_every_tenant(pg_dsn: str) -> None:
    fresh, current = new_tenant(), new_tenant()
    conn = await asyncpg.connect(pg_dsn)
    try:
        await migrate_schema(conn, current, load_migrations())
        # A tenant left at no version at all (e.g. created by an older release before 0001).
        await conn.execute(f'CREATE SCHEMA "tenant_{fresh}"')
        await conn.execute(
            f'CREATE TABLE "tenant_{fresh}".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, '
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
    finally:
        await conn.close()
    env = {**os.environ, "MCP_HTTP_DATABASE_CONNECTION_STRING": pg_dsn}
    done = await asyncio.to_thread(
        subprocess.run, mcp_pa_command("db", "migrate"), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"tenant {fresh}: applied 1" in done.stdout
    assert f"tenant {current}: up to date" in done.stdout


def test_app_command_serves_health_and_refuses_anonymous_mcp(pg_dsn: str, tmp_path) -> None:
    port = free_port()
    env = {"MCP_HTTP_DATABASE_CONNECTION_STRING": pg_dsn, "MCP_HTTP_PUBLIC_URL": "https://mcp.example.com"}
    app = listening("app", mcp_pa_command("app", "--listen", f"127.0.0.1:{port}"), port, tmp_path / "app.log", env)
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/readyz").json() == {"status": "ready"}
            assert http.get(contract.PRM_MCP_PATH).json()["resource"] == "https://mcp.example.com/mcp"
            assert http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).status_code == 401
    finally:
        app.stop()
    log = (tmp_path / "app.log").read_text()
    assert app.proc is not None
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why it ended.
    assert app.proc.returncode in (0, -15) and "Application shutdown complete" in log, log


def test_app_command_reports_a_bad_listen_address() -> None:
    done = subprocess.run(mcp_pa_command("app", "--listen", "nonsense"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--listen must be HOST:PORT" in done.stderr
