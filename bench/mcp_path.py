"""Part 3: the full MCP path, Envoy (TLS) → our ext_authz → the app → PostgreSQL (pgserver).

The app is stateless with JSON responses, so one `tools/call` is one POST that h2load can
repeat. Before the load, one call of each tool is checked for a real result; after it, the
number of todos in the tenant's table must equal the create_todo calls h2load counted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx

from bench import envoy_variants
from bench.context import Bench, Row
from bench.load import BenchError, H2Load
from bench.stack import Authz, Stack, ports, rss_mb, sampling_rss
from bench.traffic import api_key
from mcp_pa.core import contract
from mcp_pa.core.settings import ENV_PREFIX

CLIENTS, STREAMS = 4, 4
PROTOCOL_VERSION = "2025-06-18"
SEED_TODOS = 20
API_KEY_TENANT = "default"  # MCP_HTTP_API_KEY's tenant (docs/architecture.md)


def tool_call(tool: str, arguments: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments}}).encode()


def _headers(bench: Bench, tool: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": PROTOCOL_VERSION,
        contract.HEADER_MCP_METHOD: "tools/call",
        contract.HEADER_MCP_NAME: tool,
        **api_key(bench.api_key),
    }


def _call(client: httpx.Client, url: str, bench: Bench, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = client.post(url, content=tool_call(tool, arguments), headers=_headers(bench, tool))
    if response.status_code != 200:
        raise BenchError(f"{tool} through Envoy answered {response.status_code}: {response.text[:300]}")
    result = response.json().get("result") or {}
    if result.get("isError") or "structuredContent" not in result:
        raise BenchError(f"{tool} through Envoy did not succeed: {response.text[:300]}")
    return result["structuredContent"]


async def _count_todos(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {contract.tenant_schema(API_KEY_TENANT)}.todos"))
    finally:
        await connection.close()


def run(bench: Bench, stack: Stack, authz: Authz) -> int:
    """Measure both tools; returns the app's pid (part 4 reports its RSS)."""
    dsn = stack.postgres(bench.out / "pgdata")
    https, http, admin, app_port = ports(4)
    app = stack.app(app_port, {f"{ENV_PREFIX}DATABASE_CONNECTION_STRING": dsn, f"{ENV_PREFIX}PUBLIC_URL": "https://localhost:8443",
                               f"{ENV_PREFIX}LOG_LEVEL": "WARNING"})
    config = envoy_variants.render(envoy_variants.Ports(https, http, admin, authz.port, app_port),
                                   bench.certs.server_cert.parent, direct_response=False)
    stack.envoy("envoy-mcp", config, admin, bench.out)
    url = f"https://localhost:{https}{contract.MCP_PATH}"
    with httpx.Client(verify=str(bench.certs.ca_cert), timeout=30) as client:
        for index in range(SEED_TODOS):
            _call(client, url, bench, "create_todo", {"title": f"seed {index}"})
        listed = _call(client, url, bench, "list_todos", {"limit": SEED_TODOS})
    if len(listed["todos"]) != SEED_TODOS:
        raise BenchError(f"list_todos returned {len(listed['todos'])} todos, expected {SEED_TODOS}")

    idle = rss_mb(app.pid)
    loads = {}
    for tool, arguments in (("list_todos", {"limit": SEED_TODOS}), ("create_todo", {"title": "bench"})):
        body = bench.out / f"{tool}.json"
        body.write_bytes(tool_call(tool, arguments))
        headers = [f"{k}: {v}" for k, v in _headers(bench, tool).items()]
        loads[tool] = H2Load(url.replace("localhost", "127.0.0.1"), headers, body=body, clients=CLIENTS, streams=STREAMS,
                             duration=bench.duration, warm_up=bench.warm_up)
    before = asyncio.run(_count_todos(dsn))
    with sampling_rss(app.pid) as samples:
        results = bench.interleave({tool: (lambda t=tool: bench.h2load(loads[t])) for tool in loads})
    created = asyncio.run(_count_todos(dsn)) - before
    # h2load counts only the measured window; warm-up calls create todos too, so at least that many.
    expected = sum(m.requests for m in results["create_todo"])
    if created < expected:
        raise BenchError(f"create_todo: h2load counted {expected} successful calls but only {created} todos exist")
    note = f"Envoy TLS → authz → app → PostgreSQL; h2load -c {CLIENTS} -m {STREAMS}, {bench.duration:g} s x {bench.rounds}"
    for tool, runs in results.items():
        bench.add_measured("3 full MCP path", f"tools/call {tool}", runs, note)
    bench.add(Row("4 memory", "app RSS idle (after seeding)", value=idle, unit="MB"))
    bench.add(Row("4 memory", "app RSS under load (max)", value=max(samples), unit="MB",
                  note=f"{len(samples)} samples during part 3"))
    return app.pid
