"""search: one keyword search over todos, projects and their tasks, events and documents (accent-insensitive, any language)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from mcp_app.tools import paging, times
from mcp_app.tools.base import ToolFailure, transaction
from mcp_app.tools.documents import Tags
from mcp_app.tools.inputs import Cursor, SearchQuery
from mcp_app.tools.rows import out

LISTING = "search"
_KEY = (paging.NUMBER, paging.TEXT, paging.ID)
_HEADLINE = "MaxWords=30, MinWords=10, MaxFragments=2, StartSel=**, StopSel=**"


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
    mode: SearchMode = SearchMode.KEYWORD,
    kinds: Kinds = (),
    tags: Annotated[Tags, Field(description="only documents carrying every one of these tags")] = (),
    cursor: Cursor = None,
    limit: SearchLimit = 20,
) -> dict[str, Any]:
    """Search everything you keep (todos, projects, project tasks, events by title, location and notes, documents by title, tags and body),
    accents and case ignored; words, "phrases", -excluded, or. Ranked, with snippets; pages with cursor/next_cursor."""
    if mode is not SearchMode.KEYWORD:
        raise ToolFailure(f"mode: {mode.value} search is not enabled on this server yet; use mode=keyword")
    after = paging.decode(cursor, LISTING, _KEY)
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        if not await tx.conn.fetchval("SELECT websearch_to_tsquery('simple', fold($1))::text", query):
            raise ToolFailure("query: it has no searchable words (only punctuation)")
        wanted = [k.value for k in kinds] or [k.value for k in Kind]
        if tags:
            wanted = [k for k in wanted if k == Kind.DOCUMENT.value]
        rows = await tx.conn.fetch(
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
            limit + 1,
        )
        page, next_cursor = paging.page(LISTING, rows, limit, lambda r: (float(r["rank"]), r["kind"], r["id"]))
        results = [_result(r, tz) for r in page]
        tx.detail = f"{len(results)} results"
        return {"query": query, "mode": mode.value, "results": results, "next_cursor": next_cursor}


def _result(row: asyncpg.Record, tz: dt.tzinfo) -> dict[str, Any]:
    result = {**out(row, tz, exclude=("rank", "tags")), "rank": round(float(row["rank"]), 4)}
    if row["kind"] == Kind.DOCUMENT.value:
        result["tags"] = list(row["tags"])
    return result


TOOLS = [search]
