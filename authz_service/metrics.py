"""Prometheus metrics of the authz service, served on the metrics port.

Label children on the hot path are resolved once (`check_counter`) so a cached-token Check
pays one dict lookup per metric, not a label resolution.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CHECKS = Counter("mcp_pa_authz_checks_total", "Check decisions by result and provider", ["result", "provider"])
CHECK_SECONDS = Histogram(
    "mcp_pa_authz_check_duration_seconds",
    "Time to decide one Check",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CACHE = Counter("mcp_pa_authz_identity_cache_total", "Identity cache lookups by outcome", ["outcome"])
PROVIDER_SECONDS = Histogram(
    "mcp_pa_authz_provider_request_duration_seconds",
    "Outbound provider HTTP calls by provider, endpoint and outcome",
    ["provider", "endpoint", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
JWKS_REFRESHES = Counter("mcp_pa_authz_jwks_refreshes_total", "JWKS fetches by provider and result", ["provider", "result"])

_check_children: dict[tuple[str, str], Counter] = {}


def check_counter(result: str, provider: str) -> Counter:
    """The CHECKS child for (result, provider), resolved once per pair."""
    child = _check_children.get((result, provider))
    if child is None:
        child = _check_children[(result, provider)] = CHECKS.labels(result=result, provider=provider)
    return child


CACHE_HIT = CACHE.labels(outcome="hit")
CACHE_NEGATIVE_HIT = CACHE.labels(outcome="negative_hit")
CACHE_MISS = CACHE.labels(outcome="miss")
