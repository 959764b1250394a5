"""Any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM, TEI…) over httpx.

Texts go in batches; 429 and 5xx answers are retried with exponential backoff (honouring
Retry-After); the first answer fixes the dimension and every later one must match it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Sequence

import httpx

from mcp_app.embeddings import EmbeddingError, check_dimension
from mcp_pa.core.settings import ENV_PREFIX, Settings

BATCH = 64
QUERY_TIMEOUT = 5.0  # seconds: a search waits this long before answering with keyword results
PASSAGE_TIMEOUT = 60.0
ATTEMPTS = 4
BACKOFF = 0.5  # seconds before the first retry; doubles each time
MAX_RETRY_AFTER = 30.0
_RETRIED = frozenset({429, 500, 502, 503, 504})


class OpenAIEmbedder:
    """POST {url}/embeddings with `{"model", "input": [...]}`; the API key as a bearer token."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        *,
        backoff: float = BACKOFF,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._endpoint = url.rstrip("/") + "/embeddings"
        self._model = model
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._dimension: int | None = None
        self._backoff = backoff
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        if not settings.embeddings_url or not settings.embeddings_model:
            raise ValueError(f"{ENV_PREFIX}EMBEDDINGS=openai needs {ENV_PREFIX}EMBEDDINGS_URL and {ENV_PREFIX}EMBEDDINGS_MODEL")
        if not settings.embeddings_url.startswith(("http://", "https://")):
            raise ValueError(f"{ENV_PREFIX}EMBEDDINGS_URL must be an http(s) URL")
        return cls(settings.embeddings_url, settings.embeddings_model, settings.embeddings_api_key)

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int | None:
        return self._dimension

    async def queries(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._embed(texts, QUERY_TIMEOUT, attempts=1)

    async def passages(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._embed(texts, PASSAGE_TIMEOUT, attempts=ATTEMPTS)

    async def _embed(self, texts: Sequence[str], timeout: float, *, attempts: int) -> list[list[float]]:
        result: list[list[float]] = []
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers) as client:
            for start in range(0, len(texts), BATCH):
                batch = list(texts[start : start + BATCH])
                vectors = await self._batch(client, batch, attempts)
                self._dimension = check_dimension(self._model, self._dimension, vectors)
                result.extend(vectors)
        return result

    async def _batch(self, client: httpx.AsyncClient, batch: list[str], attempts: int) -> list[list[float]]:
        body = {"model": self._model, "input": batch, "encoding_format": "float"}
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await client.post(self._endpoint, json=body)
            except httpx.HTTPError as exc:
                if last:
                    raise EmbeddingError(f"embeddings endpoint unreachable: {type(exc).__name__}") from exc
                await self._sleep(self._backoff * 2**attempt)
                continue
            if response.status_code in _RETRIED and not last:
                await self._sleep(self._wait(response, attempt))
                continue
            if response.status_code != 200:
                raise EmbeddingError(f"embeddings endpoint answered {response.status_code}: {_error_message(response)}")
            return _vectors(response, len(batch))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, response: httpx.Response, attempt: int) -> float:
        try:
            return min(float(response.headers["retry-after"]), MAX_RETRY_AFTER)
        except (KeyError, ValueError):
            return float(self._backoff * 2**attempt)


def _error_message(response: httpx.Response) -> str:
    # OpenAI's shape: {"error": {"message", "type", "code"}}; others send text. Never echo headers.
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = response.text
    return str(message or "no message")[:200]


def _vectors(response: httpx.Response, expected: int) -> list[list[float]]:
    try:
        payload: Any = response.json()
        items = sorted(payload["data"], key=lambda item: item["index"])
        vectors = [[float(x) for x in item["embedding"]] for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddingError("embeddings endpoint answered 200 without OpenAI's shape {data: [{index, embedding}]}") from exc
    if len(vectors) != expected:
        raise EmbeddingError(f"embeddings endpoint returned {len(vectors)} vectors for {expected} inputs")
    return vectors
