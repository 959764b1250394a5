"""Part 5: list_todos and search latency with 10,000 (and 100,000) rows for one user (`python -m bench.data_scale`).

The app runs in-process under uvicorn over an embedded PostgreSQL; one user gets N todos (plus
N/10 documents and N/10 events, so search has every kind to scan), then each tool is called
sequentially over HTTP with the identity headers the front door would set (no Envoy, no authz:
this part measures the data path). Reported: median and p95 milliseconds per call. `--rows` takes
cumulative counts (`--rows 10000,100000` grows the same user's data and measures at each);
`make bench` part 5 runs 10,000 only, so a default run stays short.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.context import Bench, Row
from bench.inprocess import start_app
from mcp_app.db import Database
from mcp_pa.core import contract
from mcp_pa.core.postgres import EmbeddedPostgres

ROWS = (10_000, 100_000)
CALLS = 200
PROTOCOL_VERSION = "2025-06-18"


def _body(tool: str, arguments: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}).encode()


async def _seed(database: Database, me: contract.Identity, rows: int, have: int = 0) -> None:
    """Grow the user's data from `have` to `rows` todos (and a tenth of that in documents and events)."""
    async with database.transaction(me) as conn:
        await conn.execute(
            "INSERT INTO todos (title, notes, due_date, priority) SELECT 'Aufgabe ' || i || CASE WHEN i % 50 = 0 THEN ' Café Müller' ELSE '' END, "
            "'Notizen zur Aufgabe ' || i, DATE '2026-01-01' + i % 365, (ARRAY['low','medium','high','urgent'])[1 + i % 4] "
            "FROM generate_series($2 + 1, $1) i",
            rows, have,
        )
        await conn.execute(
            "INSERT INTO documents (kind, title, content, content_type) SELECT 'text', 'Dokument ' || i, "
            "repeat('Lorem ipsum dolor sit amet ', 20) || CASE WHEN i % 40 = 0 THEN ' café' ELSE '' END, 'text/markdown' FROM generate_series($2 + 1, $1) i",
            rows // 10, have // 10,
        )
        await conn.execute(
            "INSERT INTO calendar_events (title, starts_at, ends_at, location) SELECT 'Termin ' || i, now() + i * interval '1 hour', "
            "now() + i * interval '1 hour' + interval '30 minutes', CASE WHEN i % 30 = 0 THEN 'Praxis Müller' ELSE 'Büro' END "
            "FROM generate_series($2 + 1, $1) i",
            rows // 10, have // 10,
        )
    # Statistics as autovacuum would have them for data that grew over weeks (the tenant role may not
    # ANALYZE: it does not own the tables, so the superuser does).
    schema = contract.tenant_schema(me.tenant_id)
    await database.pool.execute(f'ANALYZE "{schema}".todos, "{schema}".documents, "{schema}".calendar_events')


def _time(client: httpx.Client, url: str, headers: dict[str, str], tool: str, arguments: dict[str, Any], calls: int) -> list[float]:
    seconds: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        response = client.post(url, content=_body(tool, arguments), headers={**headers, contract.HEADER_MCP_NAME: tool})
        seconds.append(time.perf_counter() - started)
        result = response.json().get("result") or {}
        if response.status_code != 200 or result.get("isError"):
            raise RuntimeError(f"{tool} failed: {response.text[:300]}")
    return seconds


def _summary(name: str, seconds: list[float]) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in seconds)
    return {"call": name, "calls": len(ms), "median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 2)}


async def run(rows: tuple[int, ...] = ROWS, calls: int = CALLS) -> list[dict[str, Any]]:
    """Grow one user's todos to each of `rows` in turn and time list_todos and search; one summary per count and call shape."""
    with tempfile.TemporaryDirectory(prefix="mcp-pa-bench-data-") as root:
        postgres = EmbeddedPostgres(Path(root) / "pgdata")
        try:
            database = Database(postgres.dsn, max_size=4)
            # Keyword data path only: embedding the seeded rows in the background would skew it (part 6 measures semantic search).
            served = await start_app(database, postgres.dsn, embeddings="off")
            me = contract.Identity(user_id="apikey:bench", tenant_id=f"bench_{uuid.uuid4().hex[:8]}", permissions=frozenset(contract.PERMISSIONS),
                                   provider="apikey", email="bench@example.com")
            headers = {**me.to_headers(), "content-type": "application/json", "accept": "application/json, text/event-stream",
                       "mcp-protocol-version": PROTOCOL_VERSION, contract.HEADER_MCP_METHOD: "tools/call"}
            url = served.url
            results: list[dict[str, Any]] = []
            with httpx.Client(timeout=60) as client:
                # The client is synchronous and the server shares this loop: every call runs in a thread.
                await asyncio.to_thread(_time, client, url, headers, "whoami", {}, 1)  # creates and migrates the schema
                have = 0
                for count in rows:
                    await _seed(database, me, count, have)
                    have = count
                    for name, tool, arguments in await _shapes(client, url, headers, count):
                        summary = _summary(name, await asyncio.to_thread(_time, client, url, headers, tool, arguments, calls))
                        results.append({"rows": count, **summary})
            await served.stop()
            return results
        finally:
            postgres.close()


async def _shapes(client: httpx.Client, url: str, headers: dict[str, str], rows: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The call shapes measured at `rows`, with a cursor 20 pages deep (keyset paging should cost what the first page does)."""
    page: dict[str, Any] = {"limit": 50}
    for _ in range(20):
        answer = (
            await asyncio.to_thread(client.post, url, content=_body("list_todos", page), headers={**headers, contract.HEADER_MCP_NAME: "list_todos"})
        ).json()
        page = {"limit": 50, "cursor": answer["result"]["structuredContent"]["next_cursor"]}
    return [
        ("list_todos limit=50 (first page)", "list_todos", {"limit": 50}),
        ("list_todos limit=50 (page 21, by cursor)", "list_todos", page),
        ("list_todos limit=200", "list_todos", {"limit": 200}),
        ("search 'cafe' (all kinds)", "search", {"query": "cafe"}),
        (f"search 'aufgabe' ({rows:,} matches, ranked)", "search", {"query": "aufgabe"}),
    ]


def add_rows(bench: Bench) -> None:
    """Part 5 in `python -m bench --parts 5`: one report row per call shape (p95 in the p99 column's place is not claimed)."""
    for r in asyncio.run(run(rows=ROWS[:1] if bench.quick else ROWS, calls=50 if bench.quick else CALLS)):
        bench.add(Row("5 data", f"{r['call']}, {r['rows']:,} rows", p50_ms=r["median_ms"], note=f"p95 {r['p95_ms']} ms over {r['calls']} calls"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(map(str, ROWS)), help="cumulative todo counts for the one user, e.g. 10000,100000")
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args(argv)
    counts = tuple(int(c) for c in args.rows.split(","))
    if not counts or list(counts) != sorted(set(counts)) or counts[0] < 1:
        parser.error(f"--rows must be increasing positive counts, got {args.rows!r}")
    results = asyncio.run(run(counts, args.calls))
    print(f"{'rows':>8} {'call':<48} {'calls':>6} {'median ms':>10} {'p95 ms':>8}")
    for r in results:
        print(f"{r['rows']:>8} {r['call']:<48} {r['calls']:>6} {r['median_ms']:>10} {r['p95_ms']:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
