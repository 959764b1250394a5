"""Outbound HTTP to identity providers: one shared httpx.AsyncClient, short timeouts, metrics.

Timeouts, connection errors, 5xx and 429 become ProviderUnavailable (503, never cached as
valid); other statuses go back to the caller, which knows what a 401 or 404 means for it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from authz_service import metrics
from authz_service.errors import ProviderUnavailable

MAX_RESPONSE_BYTES = 1 << 20  # provider answers are small; refuse to buffer a huge body


def make_client(timeout: float) -> httpx.AsyncClient:
    """The process-wide client: short timeouts, bounded pool, no redirects to unexpected hosts."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=False,
        headers={"user-agent": "mcp-pa-authz/0.1", "accept": "application/json"},
    )


async def request(
    client: httpx.AsyncClient, method: str, url: str, *, provider: str, endpoint: str, **kwargs: Any
) -> httpx.Response:
    """Send one request; raise ProviderUnavailable for anything that is the provider's fault."""
    started = time.perf_counter()
    outcome = "error"
    try:
        response = await client.request(method, url, **kwargs)
        outcome = str(response.status_code)
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise ProviderUnavailable(f"{provider} sent an oversized answer")
        if response.status_code == 429 or response.status_code >= 500:
            retry = response.headers.get("retry-after", "")
            raise ProviderUnavailable(
                f"{provider} is unavailable (HTTP {response.status_code}); try again shortly",
                retry_after=int(retry) if retry.isdigit() and 0 < int(retry) <= 300 else 5,
            )
        return response
    except httpx.TimeoutException as exc:
        outcome = "timeout"
        raise ProviderUnavailable(f"{provider} did not answer in time; try again shortly") from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{provider} could not be reached; try again shortly") from exc
    finally:
        metrics.PROVIDER_SECONDS.labels(provider=provider, endpoint=endpoint, outcome=outcome).observe(
            time.perf_counter() - started
        )


def json_body(response: httpx.Response, provider: str) -> Any:
    """The decoded JSON of a provider answer; a garbled answer is the provider's fault (503)."""
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"{provider} sent an answer that is not JSON") from exc
