"""Cost as tenants grow: 1, 100, 1,000 (… 5,000) tenant schemas in one PostgreSQL (`python -m bench.tenants`).

Schemas are created by the app's own first-request path (`Database.ensure_tenant`: role, schema,
migrations, grants under an advisory lock). At each count: the seconds per new schema, `whoami`
p50/p99 over HTTP for tenants picked across all schemas (identity headers as the front door sets
them; no Envoy, no authz), `mcp-pa db migrate` time with everything current, the catalog's size
(pg_class rows, database size) and the pool's connections. Prints one JSON line per count.
`make bench` part 7 (`python -m bench --parts 7`: ~25 minutes here, most of it the 4,000 schemas to 5,000) runs all four.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.context import Bench, Row
from bench.inprocess import start_app
from mcp_app.db import Database, migrate_all
from mcp_pa.core import contract
from mcp_pa.core.postgres import EmbeddedPostgres

COUNTS = (1, 100, 1000, 5000)
CALLS = 300
POOL = 10
BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}).encode()


def tenant(i: int) -> str:
    return f"t{i:05d}"


def identity(i: int) -> contract.Identity:
    return contract.Identity(user_id=f"apikey:u{i}", tenant_id=tenant(i), permissions=frozenset(contract.PERMISSIONS), provider="apikey")


def _calls(url: str, count: int, calls: int) -> list[float]:
    chosen = random.Random(count)
    seconds = []
    with httpx.Client(timeout=60) as client:
        for _ in range(calls):
            headers = {**identity(chosen.randrange(count)).to_headers(), "content-type": "application/json",
                       "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
            started = time.perf_counter()
            reply = client.post(url, content=BODY, headers=headers)
            seconds.append(time.perf_counter() - started)
            if reply.status_code != 200 or reply.json()["result"].get("isError"):
                raise RuntimeError(f"whoami failed: {reply.text[:300]}")
    return seconds


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


async def run(counts: tuple[int, ...] = COUNTS, calls: int = CALLS) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mcp-pa-bench-tenants-") as root:
        Path(root).chmod(0o755)  # the embedded PostgreSQL's own user must traverse it when run as root
        postgres = EmbeddedPostgres(Path(root) / "pgdata")
        try:
            database = Database(postgres.dsn, max_size=POOL)
            # Embeddings off: a background embedding queue would share the cores with the measured calls.
            served = await start_app(database, postgres.dsn, embeddings="off")
            url = served.url
            made = 0
            for count in counts:
                started = time.perf_counter()
                for i in range(made, count):
                    await database.ensure_tenant(tenant(i))
                per_schema = (time.perf_counter() - started) / max(1, count - made)
                made = count
                seconds = await asyncio.to_thread(_calls, url, count, calls)
                started = time.perf_counter()
                migrated = await migrate_all(postgres.dsn)
                migrate_s = time.perf_counter() - started
                if len(migrated) != count or any(migrated.values()):
                    raise RuntimeError(f"db migrate saw {len(migrated)} schemas (expected {count}) or applied something")
                stats = await database.pool.fetchrow(
                    "SELECT (SELECT count(*) FROM pg_class) AS relations, pg_database_size(current_database()) AS bytes, "
                    "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) AS connections")
                results.append({
                    "tenants": count, "first_request_schema_ms": round(per_schema * 1000, 1),
                    "whoami_p50_ms": _ms(seconds, 0.5), "whoami_p99_ms": _ms(seconds, 0.99), "whoami_mean_ms": round(statistics.fmean(seconds) * 1000, 2),
                    "db_migrate_s": round(migrate_s, 2), "catalog_relations": stats["relations"], "database_mb": round(stats["bytes"] / 1e6, 1),
                    "pool_size": database.pool.get_size(), "connections": stats["connections"],
                })
                print(json.dumps(results[-1]), flush=True)
            await served.stop()
        finally:
            postgres.close()
    return results


def add_rows(bench: Bench) -> None:
    """Part 7 in `python -m bench --parts 7`: per count, whoami latency as the row and the schema-side figures in its note."""
    counts = (1, 100) if bench.quick else COUNTS
    for r in asyncio.run(run(counts, 50 if bench.quick else CALLS)):
        schemas = f"{r['tenants']:,} tenant schema{'s' if r['tenants'] != 1 else ''}"
        bench.add(Row("7 tenants", f"whoami, {schemas}", p50_ms=r["whoami_p50_ms"], p99_ms=r["whoami_p99_ms"],
                      note=f"new schema {r['first_request_schema_ms']} ms; db migrate {r['db_migrate_s']} s; {r['catalog_relations']:,} relations; "
                           f"{r['database_mb']} MB; pool {r['pool_size']}, {r['connections']} connections"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tenants", description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)), help="cumulative tenant counts, e.g. 1,100,1000,5000")
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args(argv)
    asyncio.run(run(tuple(int(c) for c in args.counts.split(",")), args.calls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
