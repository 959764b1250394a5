"""The embedding queue worker: turns `embedding_jobs` rows into vectors, in the app process, off the request path.

Writes enqueue jobs in their own transaction (triggers of migration 0003) and NOTIFY on
commit; the worker wakes on that notification or on its periodic sweep (which also picks up
work left by a stopped process), claims due jobs with FOR UPDATE SKIP LOCKED under a lease,
embeds outside any transaction, and stores the vectors as the item's owner only if the item
did not change meanwhile. Failures back off exponentially; nothing is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from pathlib import Path
from typing import AsyncIterator

import asyncpg

from mcp_app.db import TENANT_ROLE, Database, database_in_use, ensure_role, quote_ident, schema_for
from mcp_app.embeddings import Embedder, EmbeddingError, embedder_for, vector_literal
from mcp_pa.core import contract
from mcp_pa.core.settings import get_settings

log = logging.getLogger(__name__)

CHANNEL = "mcp_pa_embeddings"  # the triggers' pg_notify channel (0003_embeddings.sql)
CONCURRENCY = 2  # tenants worked at once (each embeds one batch at a time)
CLAIM = 8  # jobs claimed per batch
LEASE_SECONDS = 300  # a claimed job is retried after this if its worker vanished
BACKOFF_SECONDS = 2.0  # after the first failure; doubles per attempt
MAX_BACKOFF_SECONDS = 300.0
SWEEP_SECONDS = 30.0
CHUNK_CHARS = 800  # ~200 tokens: e5-small reads at most 512
MAX_CHUNKS = 128  # per item: ~100,000 characters of one document are embedded, the rest stays keyword-only
KINDS = ("todo", "project", "project_task", "event", "document")
# Only vectors of these dimensions have an HNSW index made by migration 0003; others get one on first use.
MIGRATED_DIMENSIONS = frozenset({384})

# The text each kind contributes, read as the item's owner (RLS applies). Documents: images
# have no text, and an upload whose text could not be extracted has none either.
_TEXT = {
    "todo": "SELECT title, notes AS body FROM todos WHERE id = $1",
    "project": "SELECT name AS title, description AS body FROM projects WHERE id = $1",
    "project_task": "SELECT t.title, 'project: ' || p.name AS body FROM project_tasks t JOIN projects p ON p.id = t.project_id WHERE t.id = $1",
    "event": "SELECT title, concat_ws(E'\\n', nullif(location, ''), nullif(description, '')) AS body FROM calendar_events WHERE id = $1",
    "document": "SELECT title, content AS body, array_to_string(tags, ', ') AS tags FROM documents "
    "WHERE id = $1 AND content_type NOT LIKE 'image/%' AND (kind <> 'upload' OR content <> '')",
}


def chunks(title: str, body: str, tags: str = "") -> list[str]:
    """The passages one item is embedded as: its title heads every chunk of its body (at most MAX_CHUNKS)."""
    head = title.strip() + (f" ({tags})" if tags else "")
    pieces: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", body.strip()):
        for part in _split(paragraph.strip()):
            if current and len(current) + len(part) + 1 > CHUNK_CHARS:
                pieces.append(current)
                current = part
            else:
                current = f"{current}\n{part}" if current else part
            if len(pieces) >= MAX_CHUNKS:
                break
    if current and len(pieces) < MAX_CHUNKS:
        pieces.append(current)
    if not pieces:
        return [head] if head else []
    return [f"{head}\n{piece}" if head else piece for piece in pieces]


def _split(paragraph: str) -> list[str]:
    if len(paragraph) <= CHUNK_CHARS:
        return [paragraph] if paragraph else []
    # A long paragraph goes by sentences, and a long sentence by words.
    parts: list[str] = []
    for sentence in re.split(r"(?<=[.!?。])\s+", paragraph):
        while len(sentence) > CHUNK_CHARS:
            cut = sentence.rfind(" ", 0, CHUNK_CHARS)
            cut = cut if cut > CHUNK_CHARS // 2 else CHUNK_CHARS
            parts.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if sentence:
            parts.append(sentence)
    return parts


@contextlib.asynccontextmanager
async def tenant_transaction(db: Database, tenant_id: str, *, owner: str = "", worker: bool = False) -> AsyncIterator[asyncpg.Connection]:
    """A transaction in the tenant's schema as the tenant role, bound to `owner` (RLS applies); `worker` also sees the whole queue."""
    schema = schema_for(tenant_id)
    await db.ensure_tenant(tenant_id)
    async with db.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('search_path', $1, true), set_config('role', $2, true), set_config('mcp.tenant_schema', $3, true), "
            "set_config('mcp.user_id', $4, true), set_config('mcp.embedding_worker', $5, true)",
            schema,
            TENANT_ROLE,
            contract.tenant_schema(tenant_id),
            owner,
            "on" if worker else "off",
        )
        yield conn


@dataclasses.dataclass(frozen=True)
class Job:
    """One claimed row of embedding_jobs."""

    kind: str
    item_id: uuid.UUID
    owner_id: str
    version: int
    attempts: int


class EmbeddingWorker:
    """Works every tenant's queue with bounded concurrency; start() in the app's lifespan, stop() on the way out."""

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        *,
        sweep_seconds: float = SWEEP_SECONDS,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> None:
        self.db = db
        self.embedder = embedder
        self._sweep_seconds = sweep_seconds
        self._backoff = backoff_seconds
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._wake = asyncio.Event()
        self._due: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._indexed: set[tuple[str, int]] = set()
        self._retry_at: dict[str, float] = {}  # tenant → loop time of its next backoff retry
        self.embedded = 0  # passages stored since start (the bench reads it)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="embedding-worker")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    def wake(self, tenant_id: str) -> None:
        """Work this tenant's queue soon (the NOTIFY handler, and tests)."""
        self._due.add(tenant_id)
        self._wake.set()

    async def _run(self) -> None:
        sweep_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if self._listener is None or self._listener.is_closed():
                await self._listen()
            if loop.time() >= sweep_at:
                sweep_at = loop.time() + self._sweep_seconds
                await self._sweep()
            for tenant_id, at in list(self._retry_at.items()):
                if loop.time() >= at:
                    del self._retry_at[tenant_id]
                    self._due.add(tenant_id)
            wait_until = min([sweep_at, *self._retry_at.values()])
            for tenant_id in list(self._due):
                self._due.discard(tenant_id)
                self._dispatch(tenant_id)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.05, wait_until - loop.time()))
            self._wake.clear()

    async def _listen(self) -> None:
        try:
            self._listener = await asyncpg.connect(self.db.dsn)
            await self._listener.add_listener(CHANNEL, self._notified)
        except Exception as exc:  # the database may be down: the sweep retries, writes still succeed
            log.warning("embedding worker cannot listen", extra={"reason": f"{type(exc).__name__}: {exc}"[:300]})
            self._listener = None

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        tenant_id = payload.removeprefix(contract.TENANT_SCHEMA_PREFIX)
        if payload.startswith(contract.TENANT_SCHEMA_PREFIX) and contract.is_valid_tenant_id(tenant_id):
            self.wake(tenant_id)

    async def _sweep(self) -> None:
        try:
            for tenant_id in await self.db.tenant_ids():
                async with tenant_transaction(self.db, tenant_id, worker=True) as conn:
                    wait = await conn.fetchval("SELECT extract(epoch FROM min(run_after) - now()) FROM embedding_jobs")
                if wait is None:
                    continue
                if wait <= 0:
                    self._due.add(tenant_id)
                elif wait < self._sweep_seconds:  # a backoff ends before the next sweep
                    self._retry_at[tenant_id] = asyncio.get_running_loop().time() + float(wait)
        except Exception as exc:
            log.warning("embedding sweep failed", extra={"reason": f"{type(exc).__name__}: {exc}"[:300]})

    def _dispatch(self, tenant_id: str) -> None:
        if tenant_id in self._running:
            self._again.add(tenant_id)  # it may have missed what was just enqueued
            return
        task = asyncio.create_task(self._drain(tenant_id), name=f"embed-{tenant_id}")
        self._running[tenant_id] = task
        task.add_done_callback(lambda _: self._finished(tenant_id))

    def _finished(self, tenant_id: str) -> None:
        self._running.pop(tenant_id, None)
        if tenant_id in self._again:
            self._again.discard(tenant_id)
            self.wake(tenant_id)

    async def _drain(self, tenant_id: str) -> None:
        async with self._slots:
            try:
                while await self.work_once(tenant_id):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # leased jobs come back after LEASE_SECONDS; keep the worker alive
                log.exception("embedding batch failed", extra={"tenant": tenant_id})

    async def work_once(self, tenant_id: str) -> int:
        """Claim and finish one batch of due jobs; the number claimed (0 when the queue has nothing due)."""
        async with tenant_transaction(self.db, tenant_id, worker=True) as conn:
            rows = await conn.fetch(
                "UPDATE embedding_jobs j SET run_after = now() + make_interval(secs => $2), attempts = j.attempts + 1 "
                "FROM (SELECT kind, item_id FROM embedding_jobs WHERE run_after <= now() ORDER BY run_after LIMIT $1 FOR UPDATE SKIP LOCKED) due "
                "WHERE j.kind = due.kind AND j.item_id = due.item_id RETURNING j.kind, j.item_id, j.owner_id, j.version, j.attempts",
                CLAIM,
                LEASE_SECONDS,
            )
        jobs = [Job(r["kind"], r["item_id"], r["owner_id"], r["version"], r["attempts"]) for r in rows]
        if not jobs:
            return 0
        try:
            return await self._finish(tenant_id, jobs)
        except asyncio.CancelledError:
            # Stopping: hand the leased jobs back now rather than after LEASE_SECONDS.
            await asyncio.shield(self._release(tenant_id, jobs))
            raise

    async def _release(self, tenant_id: str, jobs: list[Job]) -> None:
        with contextlib.suppress(Exception):
            async with tenant_transaction(self.db, tenant_id, worker=True) as conn:
                for job in jobs:
                    await conn.execute(
                        "UPDATE embedding_jobs SET run_after = now(), attempts = greatest(attempts - 1, 0) "
                        "WHERE kind = $1 AND item_id = $2 AND version = $3",
                        job.kind,
                        job.item_id,
                        job.version,
                    )

    async def _finish(self, tenant_id: str, jobs: list[Job]) -> int:
        texts = {job: await self._texts(tenant_id, job) for job in jobs}
        passages = [text for job in jobs for text in texts[job]]
        try:
            vectors = await self.embedder.passages(passages) if passages else []
            dimension = self.embedder.dimension
            if vectors and dimension is None:
                raise EmbeddingError("the embeddings backend did not report a dimension")
        except EmbeddingError as exc:
            await self._failed(tenant_id, jobs, str(exc))
            return len(jobs)
        if dimension is not None and dimension not in MIGRATED_DIMENSIONS:
            await self._ensure_index(tenant_id, dimension)
        start = 0
        for job in jobs:
            mine = vectors[start : start + len(texts[job])]
            start += len(texts[job])
            await self._store(tenant_id, job, texts[job], mine, dimension or 0)
        return len(jobs)

    async def _texts(self, tenant_id: str, job: Job) -> list[str]:
        if job.kind not in _TEXT:
            return []
        async with tenant_transaction(self.db, tenant_id, owner=job.owner_id) as conn:
            row = await conn.fetchrow(_TEXT[job.kind], job.item_id)
        if row is None:
            return []
        return chunks(row["title"] or "", row["body"] or "", row.get("tags") or "")

    async def _store(self, tenant_id: str, job: Job, texts: list[str], vectors: list[list[float]], dimension: int) -> None:
        async with tenant_transaction(self.db, tenant_id, owner=job.owner_id) as conn:
            current = await conn.fetchval(
                "DELETE FROM embedding_jobs WHERE kind = $1 AND item_id = $2 AND version = $3 RETURNING true", job.kind, job.item_id, job.version
            )
            if not current:
                return  # changed (or deleted) while we embedded: its newer job redoes it
            # Every model's vectors of the item go: they describe text that no longer exists (or, after
            # a model change, another vector space that search ignores anyway).
            await conn.execute("DELETE FROM embeddings WHERE kind = $1 AND item_id = $2", job.kind, job.item_id)
            if texts:
                await conn.execute(
                    "INSERT INTO embeddings (kind, item_id, chunk, content, model, dimension, embedding) "
                    "SELECT $1, $2, c.ord - 1, left(c.content, 4000), $3, $4, c.v::public.vector "
                    "FROM unnest($5::text[], $6::text[]) WITH ORDINALITY AS c(content, v, ord)",
                    job.kind,
                    job.item_id,
                    self.embedder.model,
                    dimension,
                    texts,
                    [vector_literal(v) for v in vectors],
                )
        self.embedded += len(texts)

    async def _failed(self, tenant_id: str, jobs: list[Job], reason: str) -> None:
        log.warning("embedding failed; will retry", extra={"tenant": tenant_id, "jobs": len(jobs), "reason": reason[:300]})
        first = min(self._backoff * 2 ** (job.attempts - 1) for job in jobs)
        at = asyncio.get_running_loop().time() + min(first, MAX_BACKOFF_SECONDS)
        self._retry_at[tenant_id] = min(at, self._retry_at.get(tenant_id, at))
        self._wake.set()
        async with tenant_transaction(self.db, tenant_id, worker=True) as conn:
            for job in jobs:
                delay = min(self._backoff * 2 ** (job.attempts - 1), MAX_BACKOFF_SECONDS)
                await conn.execute(
                    "UPDATE embedding_jobs SET run_after = now() + make_interval(secs => $4), last_error = left($5, 300) "
                    "WHERE kind = $1 AND item_id = $2 AND version = $3",
                    job.kind,
                    job.item_id,
                    job.version,
                    delay,
                    reason,
                )

    async def _ensure_index(self, tenant_id: str, dimension: int) -> None:
        # The tenant role owns nothing, so the index is made as the connecting role (the schema's owner).
        if (tenant_id, dimension) in self._indexed:
            return
        schema = schema_for(tenant_id)
        name = quote_ident(f"embeddings_hnsw_{int(dimension)}")
        async with self.db.pool.acquire() as conn:
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {schema}.embeddings "
                f"USING hnsw ((embedding::public.vector({int(dimension)})) public.vector_cosine_ops) WHERE dimension = {int(dimension)}"
            )
        self._indexed.add((tenant_id, dimension))


# Every embeddable row of a tenant, for `mcp-pa db reembed` (the same kinds and filters as the triggers).
_EVERY_ITEM = """
INSERT INTO embedding_jobs (kind, item_id, owner_id)
SELECT 'todo', id, owner_id FROM todos
UNION ALL SELECT 'project', id, owner_id FROM projects
UNION ALL SELECT 'project_task', id, owner_id FROM project_tasks
UNION ALL SELECT 'event', id, owner_id FROM calendar_events
UNION ALL SELECT 'document', id, owner_id FROM documents WHERE content_type NOT LIKE 'image/%'
ON CONFLICT (kind, item_id) DO UPDATE SET version = embedding_jobs.version + 1, attempts = 0, run_after = now(), last_error = NULL
"""


async def reembed_all(dsn: str, model: str) -> dict[str, tuple[int, int]]:
    """Queue every item of every tenant again; per tenant (items queued, vectors of other models that search now ignores)."""
    database = Database(dsn, max_size=2)
    await database.start()
    try:
        async with database.pool.acquire() as conn:
            await ensure_role(conn)
            if not await conn.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"):
                raise RuntimeError("mcp-pa db reembed reads every user's rows: connect as a role with BYPASSRLS (or a superuser)")
        results: dict[str, tuple[int, int]] = {}
        for tenant_id in await database.tenant_ids():
            await database.ensure_tenant(tenant_id)
            schema = schema_for(tenant_id)
            async with database.pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {schema}")
                queued = int((await conn.execute(_EVERY_ITEM)).rsplit(" ", 1)[1])
                stale = await conn.fetchval("SELECT count(*) FROM embeddings WHERE model <> $1", model)
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, contract.tenant_schema(tenant_id))
            results[tenant_id] = (queued, stale)
        return results
    finally:
        await database.close()


def cli_reembed(args: argparse.Namespace) -> int:
    """`mcp-pa db reembed`: queue every item of every tenant for the configured model (after a model change)."""
    from mcp_pa.core.postgres import describe_dsn

    settings = get_settings()
    embedder = embedder_for(settings)
    if embedder is None:
        print("mcp-pa db reembed: MCP_HTTP_EMBEDDINGS=off; nothing to embed with")
        return 2
    with database_in_use(settings, create=False) as dsn:
        print(f"database: {describe_dsn(dsn)} ({Path(settings.state_dir).resolve() if not settings.database_connection_string else 'the connection string'})")
        results = asyncio.run(reembed_all(dsn, embedder.model))
    for tenant_id, (queued, stale) in results.items():
        print(f"tenant {tenant_id}: {queued} item(s) queued for {embedder.model}; {stale} vector(s) of other models ignored until replaced")
    print(f"{len(results)} tenant schema(s); the app's embedding worker does the work (search uses keyword results for items not yet embedded)")
    return 0
