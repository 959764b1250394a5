"""Documents: text, base64 uploads, external links; list, get, full-text search, delete."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import enum
import hashlib
import io
import math
import urllib.parse
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from mcp_app.embeddings.worker import CHUNK_CHARS, MAX_CHUNKS
from mcp_app.tools import paging, times
from mcp_app.tools.base import ToolFailure, transaction
from mcp_app.tools.inputs import Cursor, Limit, LongText, RowId, Title
from mcp_app.tools.rows import changes, delete_row, fetch_owned, insert_row, out, supplied, update_row

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# The base64 text of the largest upload, so oversize input is refused before it is decoded.
MAX_UPLOAD_BASE64_CHARS = 4 * math.ceil(MAX_UPLOAD_BYTES / 3)
# The MCP transport must accept a maximal upload plus its JSON-RPC envelope.
MAX_REQUEST_BODY_BYTES = MAX_UPLOAD_BASE64_CHARS + 1024 * 1024
MAX_TEXT_CHARS = 1_000_000
MAX_URL_CHARS = 2048
ALLOWED_LINK_SCHEMES = ("http", "https")
# Types people keep as personal documents; anything executable or scriptable stays out.
ALLOWED_CONTENT_TYPES = (
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
)
# Uploads whose bytes are text get their body indexed for search.
_TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "application/json")
MAX_PDF_PAGES = 500
_LIST_COLUMNS = "id, kind, title, content_type, size_bytes, sha256, url, tags, created_at, updated_at"
LISTING = "list_documents"
_KEY = (paging.INSTANT, paging.ID)


class DocumentKind(enum.StrEnum):
    """How a document was added."""

    TEXT = "text"
    UPLOAD = "upload"
    LINK = "link"


# A tuple, so the default `()` is immutable (the JSON schema is the same array as for a list).
Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=r"\S")]
Tags = Annotated[tuple[Tag, ...], Field(max_length=20)]
SearchLimit = Annotated[int, Field(ge=1, le=50)]


def _too_large(size: int) -> ToolFailure:
    limit_mb = MAX_UPLOAD_BYTES // (1024 * 1024)
    return ToolFailure(f"upload too large: {size} bytes decoded; the limit is {limit_mb} MB ({MAX_UPLOAD_BYTES} bytes)")


def decode_upload(data_base64: str) -> bytes:
    """The uploaded bytes; ToolFailure for oversize or malformed base64 (size checked before decoding)."""
    if len(data_base64) > MAX_UPLOAD_BASE64_CHARS:
        raise _too_large(len(data_base64) * 3 // 4)
    try:
        data = base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ToolFailure("data_base64 is not valid base64 (standard alphabet, with padding)") from exc
    if len(data) > MAX_UPLOAD_BYTES:
        raise _too_large(len(data))
    if not data:
        raise ToolFailure("upload is empty")
    return data


def check_link(url: str) -> str:
    """An http(s) URL with a host; `javascript:`, `data:`, `file:` and the like are refused."""
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ToolFailure("url must not contain spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_LINK_SCHEMES:
        raise ToolFailure(f"only http and https links are allowed; got scheme {scheme or '(none)'!r}")
    if not parts.hostname:
        raise ToolFailure("url has no host")
    return url


def _searchable(data: bytes, content_type: str) -> str:
    if content_type == "application/pdf":
        return _pdf_text(data)
    if content_type not in _TEXT_TYPES:
        return ""
    return data.decode("utf-8", errors="replace").replace("\x00", "")[:MAX_TEXT_CHARS]


def _pdf_text(data: bytes) -> str:
    """The text layer of a PDF (scans have none: empty); a malformed PDF is stored, just not searchable."""
    import pypdf  # only uploads of PDFs pay for the import

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages: list[str] = []
        size = 0
        for page in reader.pages[:MAX_PDF_PAGES]:
            text = page.extract_text() or ""
            pages.append(text)
            size += len(text)
            if size >= MAX_TEXT_CHARS:
                break
    except (pypdf.errors.PyPdfError, ValueError, KeyError, TypeError, OSError):
        return ""
    return "\n\n".join(pages).replace("\x00", "")[:MAX_TEXT_CHARS]


def embedding_note(content_type: str, content: str) -> str:
    """What semantic search will make of a document: indexed in the background, or why not."""
    if content_type.startswith("image/"):
        return f"not indexed for semantic search: {content_type} has no text to embed (its title and tags stay keyword-searchable)"
    if content_type not in (*_TEXT_TYPES, "text/uri-list") and not content:
        return f"not indexed for semantic search: no text could be extracted from this {content_type} file"
    if len(content) > MAX_CHUNKS * CHUNK_CHARS:
        return (
            f"queued for semantic search: its first ~{MAX_CHUNKS * CHUNK_CHARS:,} characters are embedded in the background "
            "(about a minute on a small server); the rest is found by keyword search only"
        )
    return "queued for semantic search (indexed in the background within seconds)"


async def fetch_documents(
    conn: asyncpg.Connection, tz: dt.tzinfo, kind: DocumentKind | None = None, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """One page of documents, newest first, and the cursor of the next."""
    after = paging.decode(cursor, LISTING, _KEY)
    rows = await conn.fetch(
        f"SELECT {_LIST_COLUMNS} FROM documents WHERE ($1::text IS NULL OR kind = $1) "
        "AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid)) ORDER BY created_at DESC, id DESC LIMIT $4",
        kind.value if kind else None,
        *(after or (None, None)),
        limit + 1,
    )
    page, next_cursor = paging.page(LISTING, rows, limit, lambda r: (r["created_at"], r["id"]))
    return {"documents": [out(r, tz) for r in page], "next_cursor": next_cursor}


async def create_document(title: Title, content: Annotated[str, Field(max_length=MAX_TEXT_CHARS)], tags: Tags = ()) -> dict[str, Any]:
    """Save a text document (notes, drafts; Markdown welcome)."""
    async with transaction() as tx:
        body = content.replace("\x00", "")
        values = {
            "kind": DocumentKind.TEXT.value,
            "title": title,
            "content": body,
            "content_type": "text/markdown",
            "size_bytes": len(body.encode()),
            "sha256": hashlib.sha256(body.encode()).hexdigest(),
            "tags": list(tags),
        }
        return out(await insert_row(tx, "documents", values, returning=_LIST_COLUMNS), await times.caller_zone(tx.conn))


async def upload_document(
    title: Title,
    content_type: Annotated[str, Field(max_length=100, description="one of the allowed content types")],
    data_base64: Annotated[str, Field(description="the file's bytes, standard base64")],
    tags: Tags = (),
) -> dict[str, Any]:
    async with transaction() as tx:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in ALLOWED_CONTENT_TYPES:
            raise ToolFailure(f"content type {media_type[:100]!r} is not allowed; use one of {', '.join(ALLOWED_CONTENT_TYPES)}")
        data = decode_upload(data_base64)
        text = await asyncio.to_thread(_searchable, data, media_type)  # a large PDF takes a while: off the event loop
        values = {
            "kind": DocumentKind.UPLOAD.value,
            "title": title,
            "content": text,
            "content_type": media_type,
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "data": data,
            "tags": list(tags),
        }
        row = await insert_row(tx, "documents", values, returning=_LIST_COLUMNS)
        tx.detail = f"{media_type}, {len(data)} bytes"
        return {**out(row, await times.caller_zone(tx.conn)), "semantic_search": embedding_note(media_type, text)}


# The description names the limits from the constants, which a docstring literal cannot.
upload_document.__doc__ = (
    f"Upload a file as base64 (at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB decoded). "
    f"Allowed content types: {', '.join(ALLOWED_CONTENT_TYPES)}."
)


async def create_external_document(
    title: Title,
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_CHARS)],
    description: LongText = "",
    tags: Tags = (),
) -> dict[str, Any]:
    """Save a link to a web page (http or https only)."""
    async with transaction() as tx:
        values = {
            "kind": DocumentKind.LINK.value,
            "title": title,
            "content": description,
            "content_type": "text/uri-list",
            "url": check_link(url),
            "tags": list(tags),
        }
        return out(await insert_row(tx, "documents", values, returning=_LIST_COLUMNS), await times.caller_zone(tx.conn))


async def list_documents(kind: DocumentKind | None = None, limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    """Your documents, newest first (metadata only); pages with cursor/next_cursor."""
    async with transaction() as tx:
        return await fetch_documents(tx.conn, await times.caller_zone(tx.conn), kind, limit, cursor)


async def update_document(
    document_id: RowId,
    title: Title | None = None,
    content: Annotated[str | None, Field(max_length=MAX_TEXT_CHARS, description="new body (text documents only)")] = None,
    description: Annotated[LongText | None, Field(description="new description (links only)")] = None,
    tags: Tags | None = None,
) -> dict[str, Any]:
    """Change a document's title, tags, text body (text documents) or description (links); null clears tags, content or description."""
    given = supplied()
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        row = await fetch_owned(tx.conn, "documents", "document", document_id)
        fields = changes(given, {"title": title, "tags": list(tags) if tags is not None else None}, required=("title",), blank={"tags": []})
        if "content" in given:
            if row["kind"] != DocumentKind.TEXT.value:
                raise ToolFailure(f"content: only text documents have an editable body; this one is a {row['kind']}")
            body = (content or "").replace("\x00", "")
            fields.update(content=body, size_bytes=len(body.encode()), sha256=hashlib.sha256(body.encode()).hexdigest())
        if "description" in given:
            if row["kind"] != DocumentKind.LINK.value:
                raise ToolFailure(f"description: only links have a description; this document is a {row['kind']}")
            fields["content"] = description or ""
        updated = await update_row(tx, "documents", "document", document_id, fields)
        return out(updated, tz, exclude=("owner_id", "search", "keywords", "data", "content"))


async def get_document(document_id: RowId, include_data: bool = False) -> dict[str, Any]:
    """One document: text body, link, or (include_data) the file as base64."""
    async with transaction() as tx:
        tx.target = str(document_id)
        row = await fetch_owned(tx.conn, "documents", "document", document_id)
        result = out(row, await times.caller_zone(tx.conn), exclude=("owner_id", "search", "keywords", "data"))
        if row["kind"] == DocumentKind.UPLOAD.value and include_data:
            result["data_base64"] = base64.b64encode(row["data"]).decode()
        return result


async def search_documents(
    query: Annotated[str, Field(min_length=1, max_length=200, description="words, \"phrases\", -excluded, or")],
    limit: SearchLimit = 10,
) -> dict[str, Any]:
    """Full-text search over titles and bodies, ranked, with snippets."""
    async with transaction() as tx:
        tz = await times.caller_zone(tx.conn)
        tsquery = await tx.conn.fetchval("SELECT websearch_to_tsquery('english', $1)::text", query)
        if not tsquery:
            raise ToolFailure("the query has no searchable words (only stop words or punctuation)")
        rows = await tx.conn.fetch(
            "SELECT id, kind, title, url, content_type, created_at, ts_rank(search, q) AS rank, "
            "ts_headline('english', CASE WHEN content = '' THEN title ELSE content END, q, "
            "'MaxWords=30, MinWords=10, MaxFragments=2, StartSel=**, StopSel=**') AS snippet "
            "FROM documents, websearch_to_tsquery('english', $1) AS q "
            "WHERE search @@ q ORDER BY rank DESC, created_at DESC LIMIT $2",
            query,
            limit,
        )
        return {"query": query, "results": [{**out(r, tz), "rank": round(float(r["rank"]), 4)} for r in rows]}


async def delete_document(document_id: RowId) -> dict[str, Any]:
    """Delete a document."""
    return await delete_row("documents", "document", document_id)


TOOLS = [
    create_document,
    upload_document,
    create_external_document,
    list_documents,
    get_document,
    update_document,
    search_documents,
    delete_document,
]
