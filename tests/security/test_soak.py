"""Soak: a minute of mixed traffic through the whole stack, then a look at the processes.

Allowed and refused requests interleave from several concurrent clients (API keys, provider
tokens, no credential, wrong key, read-only caller naming a write tool, foreign origin, public
routes). Every answer must be the one its kind expects; afterwards the authz service's and the
app's memory must be flat and no process may hold more file descriptors (sockets included)
than it did after warm-up, nor the app more database connections than its pool allows.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import asyncpg
import httpx
import pytest

from mcp_pa.core import contract
from tests.security.conftest import GOOGLE_CLIENT, Stack, api_key, bearer, mcp_headers, open_fds, process_rss_kib, tool_call

SOAK_SECONDS = 60.0
WARM_UP_SECONDS = 5.0
CLIENTS = 6
RSS_GROWTH_LIMIT_KIB = 20 * 1024  # a leak of even 1 KiB per request would pass this in seconds
APP_POOL_MAX = 10  # mcp_app.db.Database's default pool size: more connections means a leak
FD_GROWTH_LIMIT = 12  # pool connections opened on demand after warm-up; a leak grows per request


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix, its weight and the status it must get."""

    name: str
    weight: int
    status: int
    build: Callable[[Stack, int], tuple[str, str, dict[str, str], bytes | None]]
    tool_ok: bool = False  # a 200 whose JSON-RPC result must not be a tool error


def rpc(credential: dict[str, str], message: dict[str, Any], **extra: str) -> Callable[[Stack, int], tuple[str, str, dict[str, str], bytes | None]]:
    body = json.dumps(message).encode()
    return lambda s, n: ("POST", contract.MCP_PATH, mcp_headers(credential, **extra), body)


def create_todo(s: Stack, n: int) -> tuple[str, str, dict[str, str], bytes | None]:
    return "POST", contract.MCP_PATH, mcp_headers(api_key("soak")), json.dumps(tool_call("create_todo", {"title": f"soak {n}"})).encode()


def google_user(s: Stack, n: int) -> tuple[str, str, dict[str, str], bytes | None]:
    token = s.google.mint(GOOGLE_CLIENT, sub=f"soak-{n % 5}", email=f"soak{n % 5}@gmail.com", email_verified=True)
    return "POST", contract.MCP_PATH, mcp_headers(bearer(token)), json.dumps(tool_call("whoami")).encode()


KINDS = [
    Kind("whoami-key", 10, 200, rpc(api_key("soak"), tool_call("whoami")), tool_ok=True),
    Kind("create-todo", 6, 200, create_todo, tool_ok=True),
    Kind("list-todos", 6, 200, rpc(api_key("soak"), tool_call("list_todos", {"limit": 5})), tool_ok=True),
    Kind("dashboard", 3, 200, rpc(api_key("soak"), tool_call("get_dashboard")), tool_ok=True),
    Kind("read-resource", 3, 200, rpc(api_key("soak"), {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "pa://todos"}})),
    Kind("google-token", 4, 200, google_user, tool_ok=True),
    Kind("no-credential", 4, 401, rpc({}, tool_call("whoami"))),
    Kind("wrong-key", 4, 401, rpc({contract.HEADER_API_KEY: "mcp_sk_soak_wrong_key_0123456789abcdef"}, tool_call("whoami"))),
    Kind(
        "read-only-write",
        2,
        403,
        rpc(api_key("reader"), tool_call("create_todo", {"title": "x"}), **{"mcp-method": "tools/call", "mcp-name": "create_todo"}),
    ),
    Kind("foreign-origin", 2, 403, rpc(api_key("soak"), tool_call("whoami"), origin="https://evil.example")),
    Kind("metadata", 2, 200, lambda s, n: ("GET", contract.PRM_MCP_PATH, {}, None)),
    Kind("healthz", 1, 200, lambda s, n: ("GET", contract.HEALTHZ_PATH, {}, None)),
]


class Soak:
    """Concurrent clients drawing from KINDS until a deadline; tallies what came back."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.counts: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self._n = 0

    async def client(self, seed: int, until: float) -> None:
        rng = random.Random(seed)
        async with self.stack.http_client() as http:
            while time.monotonic() < until:
                kind = rng.choices(KINDS, weights=[k.weight for k in KINDS])[0]
                self._n += 1
                method, path, headers, body = kind.build(self.stack, self._n)
                response = await http.request(method, path, headers=headers, content=body)
                self.counts[kind.name] += 1
                problem = self._problem(kind, response)
                if problem:
                    self.unexpected.append(f"{kind.name}: {problem}")

    @staticmethod
    def _problem(kind: Kind, response: httpx.Response) -> str | None:
        if response.status_code != kind.status:
            return f"HTTP {response.status_code} {response.text[:200]}"
        if kind.tool_ok and response.json()["result"].get("isError"):
            return f"tool error {response.text[:200]}"
        return None

    async def run(self, seconds: float, seed: int) -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(self.client(seed * 100 + i, until) for i in range(CLIENTS)))


async def database_connections(stack: Stack) -> int:
    """Backends connected to the stack's PostgreSQL, besides the one asking."""
    conn = await asyncpg.connect(stack.postgres.dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
    finally:
        await conn.close()


def footprint(stack: Stack) -> dict[str, tuple[int, int]]:
    """(RSS KiB, open fds) of each long-running process."""
    pids = {"authz": stack.authz.proc.pid, "app": stack.app.proc.pid, "envoy": stack.envoy.proc.pid}
    return {name: (process_rss_kib(pid), open_fds(pid)) for name, pid in pids.items()}


@pytest.mark.soak
async def test_a_minute_of_mixed_traffic_gets_expected_statuses_with_flat_memory_and_fds(stack: Stack) -> None:
    warm = Soak(stack)
    await warm.run(WARM_UP_SECONDS, seed=1)  # fills pools and caches, so growth after is a leak
    assert warm.unexpected == [], warm.unexpected[:5]
    await asyncio.sleep(1.0)
    before = footprint(stack)
    connections_before = await database_connections(stack)

    soak = Soak(stack)
    started = time.monotonic()
    await soak.run(SOAK_SECONDS, seed=2)
    elapsed = time.monotonic() - started
    await asyncio.sleep(2.0)  # let keep-alive connections close and pools settle
    after = footprint(stack)
    connections_after = await database_connections(stack)

    total = sum(soak.counts.values())
    print(f"\nsoak: {total} requests in {elapsed:.0f} s ({total / elapsed:.0f}/s): {dict(soak.counts)}")
    print("footprint (RSS KiB, fds) before → after:", {k: (before[k], after[k]) for k in before})
    print(f"database connections before → after: {connections_before} → {connections_after}")
    assert soak.unexpected == [], f"{len(soak.unexpected)} unexpected answers, first: {soak.unexpected[:5]}"
    assert set(soak.counts) == {k.name for k in KINDS}, "some kind of request never ran"
    assert total >= 300, f"only {total} requests in {elapsed:.0f} s"
    for name in ("authz", "app"):
        growth = after[name][0] - before[name][0]
        assert growth <= RSS_GROWTH_LIMIT_KIB, f"{name} RSS grew {growth} KiB over {total} requests"
    assert connections_after <= APP_POOL_MAX, f"{connections_after} database connections ({connections_before} after warm-up)"
    for name, (_, fds) in after.items():
        assert fds <= before[name][1] + FD_GROWTH_LIMIT, f"{name} holds {fds} fds, {before[name][1]} after warm-up"
