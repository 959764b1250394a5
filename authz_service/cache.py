"""The identity cache: a wrapper around the providers, keyed by SHA-256 of the credential.

A verified identity is kept until `min(token exp, MCP_HTTP_TOKEN_CACHE_TTL)`; a refusal for
MCP_HTTP_FAILURE_CACHE_TTL seconds; an outage (ProviderUnavailable) never. Concurrent checks of
one new credential share one provider call (single flight). Size is bounded; when full the
oldest entry goes. The raw credential is never stored.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Generic, TypeVar

from authz_service import metrics
from authz_service.errors import Denied

T = TypeVar("T")


class IdentityCache(Generic[T]):
    """Remembers what a credential resolved to; see the module docstring for the rules."""

    def __init__(self, ttl: float, failure_ttl: float, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.clock = clock  # a wall clock: token `exp` is epoch seconds
        self.failure_ttl = failure_ttl
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[float, T | Denied]] = {}
        self._inflight: dict[bytes, asyncio.Future[T]] = {}  # single flight: one load per key

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: bytes, load: Callable[[], Awaitable[T]], expires_at: Callable[[T], float | None]) -> T:
        """The cached value for key, or load() it once (raising what load raised)."""
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] > self.clock():
                value = entry[1]
                if isinstance(value, Denied):
                    metrics.CACHE_NEGATIVE_HIT.inc()
                    # A fresh traceback each time: re-raising one stored instance would grow it forever.
                    raise value.with_traceback(None)
                metrics.CACHE_HIT.inc()
                return value
            self._entries.pop(key, None)
        metrics.CACHE_MISS.inc()
        task = self._inflight.get(key)
        if task is None:
            # The load runs as its own task: a caller that goes away (Envoy cancelled its RPC)
            # neither cancels it for the callers still waiting nor loses its result.
            task = asyncio.ensure_future(self._load(key, load, expires_at))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: bytes, task: "asyncio.Future[T]") -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so an outcome nobody waited for is not reported as lost

    async def _load(self, key: bytes, load: Callable[[], Awaitable[T]], expires_at: Callable[[T], float | None]) -> T:
        try:
            value = await load()
        except Denied as denied:
            if denied.cacheable and self.failure_ttl > 0:
                self._store(key, denied, self.clock() + self.failure_ttl)
            raise
        now = self.clock()
        until = now + self.ttl
        exp = expires_at(value)
        if exp is not None:
            until = min(until, exp)
        if until > now:
            self._store(key, value, until)
        return value

    def _store(self, key: bytes, value: T | Denied, until: float) -> None:
        if key not in self._entries and len(self._entries) >= self.max_entries:
            self._evict()
        self._entries[key] = (until, value)

    def _evict(self) -> None:
        # Oldest first: O(1), and insertion order roughly follows expiry.
        del self._entries[next(iter(self._entries))]

    def drop(self, predicate: Callable[[T | Denied], bool]) -> int:
        """Forget every entry whose value matches (e.g. all API keys after the keys file changed)."""
        doomed = [k for k, (_, v) in self._entries.items() if predicate(v)]
        for k in doomed:
            del self._entries[k]
        return len(doomed)
