"""search: todos, projects and their tasks, events and documents, by words (keyword), by meaning (semantic), or both (hybrid).

Keyword search pages through every match in SQL. Semantic search ranks the caller's vectors
(pgvector HNSW, cosine) of the configured model only; hybrid fuses the best CANDIDATES of both
lists by reciprocal rank fusion. Both page over that candidate list with the same opaque cursor.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from mcp_app import embeddings
from mcp_app.embeddings import Embedder, EmbeddingError, vector_literal
from mcp_app.tools import paging, times
from mcp_app.tools.base import ToolFailure, Tx, current_call, transaction
from mcp_app.tools.documents import Tags
from mcp_app.tools.inputs import Cursor, SearchQuery
from mcp_app.tools.rows import out

LISTING = "search"
_KEY = (paging.NUMBER, paging.TEXT, paging.ID)
_HEADLINE = "MaxWords=30, MinWords=10, MaxFragments=2, StartSel=**, StopSel=**"
CANDIDATES = 200  # per list, for semantic and hybrid ranking (so at most this many results)
RRF_K = 60  # reciprocal rank fusion: score = sum over lists of 1 / (RRF_K + position)
EF_SEARCH = 200  # HNSW candidates per scan (pgvector 0.6 filters after the scan, so keep it ≥ CANDIDATES)
SNIPPET_CHARS = 240
MATCHED_KEYWORD = "keyword"
MATCHED_SEMANTIC = "semantic"


class SearchMode(enum.StrEnum):
    """How search matches: by words (keyword), by meaning (semantic), or both (hybrid)."""

    KEYWORD = "keyword"
    SEMANTIC = "semantic"
    HYBRID = "hybrid"


class Kind(enum.StrEnum):
    """What a search result is."""

    TODO = "todo"
    PROJECT = "project"
    PROJECT_TASK = "project_task"
    EVENT = "event"
    DOCUMENT = "document"


SearchLimit = Annotated[int, Field(ge=1, le=100, description="At most this many results per page")]
Kinds = Annotated[tuple[Kind, ...], Field(max_length=len(Kind), description="only these kinds (default: all)")]

# Each kind's text as (title, body, tags, when); `keywords` is the generated, accent-folded tsvector
# of 0002_assistant_surface.sql. Every branch filters on its own GIN index.
_HITS = """
SELECT 'todo' AS kind, id, title, notes AS body, '{}'::text[] AS tags, created_at, ts_rank(keywords, q) AS rank
  FROM todos WHERE keywords @@ q
UNION ALL SELECT 'project', id, name, description, '{}', created_at, ts_rank(keywords, q) FROM projects WHERE keywords @@ q
UNION ALL SELECT 'project_task', id, title, '', '{}', created_at, ts_rank(keywords, q) FROM project_tasks WHERE keywords @@ q
UNION ALL SELECT 'event', id, title, concat_ws(' · ', nullif(location, ''), nullif(description, '')), '{}', created_at,
  ts_rank(keywords, q) FROM calendar_events WHERE keywords @@ q
UNION ALL SELECT 'document', id, title, left(content, 100000), tags, created_at, ts_rank(keywords, q) FROM documents WHERE keywords @@ q
"""



async def search(
    query: SearchQuery,
    mode: Annotated[SearchMode | None, Field(description="keyword, semantic or hybrid; default hybrid when semantic search is on, else keyword")] = None,
    kinds: Kinds = (),
    tags: Annotated[Tags, Field(description="only documents carrying every one of these tags")] = (),
    cursor: Cursor = None,
    limit: SearchLimit = 20,
) -> dict[str, Any]:
    """Search everything you keep (todos, projects, project tasks, events by title, location and notes, documents by title, tags and body):
    keyword (words, "phrases", -excluded, or; accents and case ignored), semantic (by meaning, any language) or hybrid (both).
    Each result says which matched and shows a snippet; pages with cursor/next_cursor."""
    embedder = embeddings.attached(current_call().toolbox.db)
    asked = mode or (SearchMode.HYBRID if embedder else SearchMode.KEYWORD)
    note: str | None = None
    if asked is not SearchMode.KEYWORD and embedder is None:
        asked, note = SearchMode.KEYWORD, "semantic search is off on this server (MCP_HTTP_EMBEDDINGS=off): these are keyword results"
    vector: list[float] | None = None
    if asked is not SearchMode.KEYWORD and embedder is not None:
        try:
            vector = (await embedder.queries([query]))[0]
        except EmbeddingError as exc:
            # The endpoint is down or refused: answer by keyword rather than fail the search.
            asked, note = SearchMode.KEYWORD, f"semantic search is unavailable right now ({exc}): these are keyword results"
    listing = LISTING if asked is SearchMode.KEYWORD else f"{LISTING}:{asked.value}"
    after = paging.decode(cursor, listing, _KEY)
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        if not await tx.conn.fetchval("SELECT websearch_to_tsquery('simple', fold($1))::text", query) and asked is not SearchMode.SEMANTIC:
            raise ToolFailure("query: it has no searchable words (only punctuation)")
        wanted = [k.value for k in kinds] or [k.value for k in Kind]
        if tags:
            wanted = [k for k in wanted if k == Kind.DOCUMENT.value]
        if asked is SearchMode.KEYWORD:
            rows = await _keyword(tx, query, wanted, tags, after, limit + 1)
            page, next_cursor = paging.page(listing, rows, limit, lambda r: (float(r["rank"]), r["kind"], r["id"]))
            results = [_result(r, tz, [MATCHED_KEYWORD]) for r in page]
        else:
            assert embedder is not None and vector is not None
            page, next_cursor = await _by_meaning(tx, embedder, vector, asked, query, wanted, tags, after, limit, listing)
            results = [_result(r, tz, r["matched"]) for r in page]
        answer: dict[str, Any] = {"query": query, "mode": asked.value, "results": results, "next_cursor": next_cursor}
        if note:
            answer["note"] = note
        if asked is not SearchMode.KEYWORD:
            pending = await tx.conn.fetchval("SELECT count(*) FROM embedding_jobs")
            if pending:
                answer["note"] = f"{pending} of your items are still being indexed for semantic search; keyword matches already include them"
        tx.detail = f"{len(results)} results, {asked.value}"
        return answer


async def _keyword(tx: Tx, query: str, wanted: list[str], tags: tuple[str, ...], after: list[Any] | None, limit: int) -> list[Any]:
    return list(
        await tx.conn.fetch(
            "WITH hits AS (SELECT h.* FROM websearch_to_tsquery('simple', fold($1)) AS q, LATERAL ("
            + _HITS
            + ") h) SELECT kind, id, title, created_at, rank, "
            f"ts_headline('simple', CASE WHEN body = '' THEN title ELSE body END, websearch_to_tsquery('simple', $1), '{_HEADLINE}') AS snippet, "
            "tags FROM (SELECT * FROM hits WHERE kind = ANY($2::text[]) AND tags @> $3::text[] "
            "AND ($4::real IS NULL OR rank < $4::real OR (rank = $4::real AND (kind, id) > ($5::text, $6::uuid))) "
            "ORDER BY rank DESC, kind, id LIMIT $7) page ORDER BY rank DESC, kind, id",
            query,
            wanted,
            list(tags),
            *(after or (None, None, None)),
            limit,
        )
    )


# The display fields of items found by meaning, looked up by id (RLS still decides what exists).
_ITEMS = """
SELECT 'todo' AS kind, id, title, '{}'::text[] AS tags, created_at FROM todos WHERE 'todo' = ANY($1) AND id = ANY($2)
UNION ALL SELECT 'project', id, name, '{}', created_at FROM projects WHERE 'project' = ANY($1) AND id = ANY($2)
UNION ALL SELECT 'project_task', id, title, '{}', created_at FROM project_tasks WHERE 'project_task' = ANY($1) AND id = ANY($2)
UNION ALL SELECT 'event', id, title, '{}', created_at FROM calendar_events WHERE 'event' = ANY($1) AND id = ANY($2)
UNION ALL SELECT 'document', id, title, tags, created_at FROM documents WHERE 'document' = ANY($1) AND id = ANY($2) AND tags @> $3::text[]
"""


async def _by_meaning(
    tx: Tx,
    embedder: Embedder,
    vector: list[float],
    mode: SearchMode,
    query: str,
    wanted: list[str],
    tags: tuple[str, ...],
    after: list[Any] | None,
    limit: int,
    listing: str,
) -> tuple[list[dict[str, Any]], str | None]:
    dimension = len(vector)
    await tx.conn.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
    distance = f"(embedding::public.vector({dimension})) OPERATOR(public.<=>) $1::public.vector({dimension})"
    # The literal dimension matches the partial index's predicate; other models' vectors never qualify.
    chunks = await tx.conn.fetch(
        f"SELECT kind, item_id, content, 1 - ({distance}) AS similarity FROM embeddings "
        f"WHERE dimension = {dimension} AND model = $2 AND kind = ANY($3::text[]) ORDER BY {distance} LIMIT $4",
        vector_literal(vector),
        embedder.model,
        wanted,
        CANDIDATES,
    )
    semantic: dict[tuple[str, Any], asyncpg.Record] = {}
    for chunk in chunks:  # nearest first: an item's first chunk is its best
        semantic.setdefault((chunk["kind"], chunk["item_id"]), chunk)
    keyword = {} if mode is SearchMode.SEMANTIC else {(r["kind"], r["id"]): r for r in await _keyword(tx, query, wanted, tags, None, CANDIDATES)}
    items = {
        (r["kind"], r["id"]): r
        for r in await tx.conn.fetch(_ITEMS, wanted, [key[1] for key in semantic if key not in keyword], list(tags))
    }
    scores: dict[tuple[str, Any], float] = {}
    if mode is SearchMode.SEMANTIC:
        scores = {key: float(chunk["similarity"]) for key, chunk in semantic.items()}
    else:
        for position, key in enumerate(keyword, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + position)
        for position, key in enumerate(semantic, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + position)
    found: list[dict[str, Any]] = []
    for key, score in scores.items():
        base = keyword.get(key) or items.get(key)
        if base is None:
            continue  # gone since it was embedded, another kind, or a document without the tags
        matched = [name for name, hits in ((MATCHED_KEYWORD, keyword), (MATCHED_SEMANTIC, semantic)) if key in hits]
        snippet = base["snippet"] if key in keyword else _snippet(semantic[key]["content"])
        found.append({"kind": key[0], "id": key[1], "title": base["title"], "created_at": base["created_at"], "rank": score,
                      "snippet": snippet, "tags": base["tags"], "matched": matched})
    found.sort(key=lambda r: (-r["rank"], r["kind"], str(r["id"])))
    if after is not None:
        last_rank, last_kind, last_id = after
        found = [r for r in found if r["rank"] < last_rank or (r["rank"] == last_rank and (r["kind"], str(r["id"])) > (last_kind, str(last_id)))]
    return paging.page(listing, found, limit, lambda r: (r["rank"], r["kind"], r["id"]))


def _snippet(chunk: str) -> str:
    # Stored chunks start with the item's title line; the snippet is the text after it.
    head, _, rest = chunk.partition("\n")
    text = " ".join((rest or head).split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _result(row: Any, tz: dt.tzinfo, matched: list[str]) -> dict[str, Any]:
    result = {
        "kind": row["kind"],
        "id": str(row["id"]),
        "title": row["title"],
        "created_at": out({"t": row["created_at"]}, tz)["t"],
        "rank": round(float(row["rank"]), 4 if MATCHED_SEMANTIC not in matched else 6),
        "snippet": row["snippet"],
        "matched": matched,
    }
    if row["kind"] == Kind.DOCUMENT.value:
        result["tags"] = list(row["tags"])
    return result


TOOLS = [search]
