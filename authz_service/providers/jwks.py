"""JSON Web Key Sets: fetched with the shared httpx client, cached, refreshed with restraint.

- Cached for the response's Cache-Control max-age, clamped to [MIN_MAX_AGE, MAX_MAX_AGE].
- An unknown `kid` triggers at most one refetch per cooldown (MCP_HTTP_JWKS_REFETCH_COOLDOWN),
  so a flood of made-up kids costs the provider one request, not one per token.
- One fetch at a time per key set; callers that waited reuse its result.
- A failed fetch keeps the last good key set; with none at all the check is a 503.
- A failed issuer (key set or discovery) is asked again only after the cooldown, also before
  its first success: meanwhile every check of its tokens is a 503 without an outbound request.
- Only signing keys of asymmetric types are kept, each with the algorithms it may verify
  (RFC 8725 §3.1): a key never verifies HS* or `none`, whatever the token says.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import httpx
import jwt

from authz_service import metrics
from authz_service.errors import InvalidToken, ProviderUnavailable
from authz_service.providers import http

log = logging.getLogger("authz.jwks")

MIN_MAX_AGE = 60.0
MAX_MAX_AGE = 86400.0
DEFAULT_MAX_AGE = 3600.0
MAX_KEYS = 50
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHMS.values()) | {"EdDSA"}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key and the algorithms it may verify."""

    key: Any
    algorithms: frozenset[str]


def _allowed_algorithms(jwk: dict[str, Any]) -> frozenset[str]:
    kty, declared = jwk.get("kty"), jwk.get("alg")
    if kty == "RSA":
        allowed = RSA_ALGORITHMS
    elif kty == "EC" and jwk.get("crv") in EC_ALGORITHMS:
        allowed = frozenset({EC_ALGORITHMS[jwk["crv"]]})
    elif kty == "OKP" and jwk.get("crv") == "Ed25519":
        allowed = frozenset({"EdDSA"})
    else:
        return frozenset()  # symmetric ("oct") or unknown key types never verify anything
    if declared is not None:
        return allowed & {declared}
    return allowed


def parse_jwks(document: Any) -> dict[str, VerificationKey]:
    """Usable signing keys by kid ("" for a key without one); raises ValueError if none."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS must be an object with a 'keys' list")
    keys: dict[str, VerificationKey] = {}
    for jwk in document["keys"][:MAX_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        algorithms = _allowed_algorithms(jwk)
        if not algorithms:
            continue
        try:
            public = jwt.PyJWK(jwk, algorithm=sorted(algorithms)[0]).key
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        kid = jwk.get("kid", "")
        if isinstance(kid, str):
            keys[kid] = VerificationKey(public, algorithms)
    if not keys:
        raise ValueError("the JWKS has no usable signing keys")
    return keys


def _max_age(cache_control: str | None) -> float:
    if cache_control:
        if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
            return MIN_MAX_AGE
        match = _MAX_AGE.search(cache_control)
        if match:
            return min(max(float(match.group(1)), MIN_MAX_AGE), MAX_MAX_AGE)
    return DEFAULT_MAX_AGE


class JWKS:
    """One issuer's key set; `url` is the JWKS URL or a coroutine that discovers it; `clock` is injectable."""

    def __init__(
        self,
        url: str | Callable[[], Awaitable[str]],
        *,
        provider: str,
        client: httpx.AsyncClient,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self.clock = clock
        self.provider = provider
        self.client = client
        self.cooldown = cooldown
        self._keys: dict[str, VerificationKey] | None = None
        self._expires = 0.0
        self._last_attempt = float("-inf")
        self._last_failure: ProviderUnavailable | None = None  # of the latest fetch, if it failed
        self._lock = asyncio.Lock()
        self._failures = metrics.JWKS_REFRESHES.labels(provider=provider, result="error")
        self._successes = metrics.JWKS_REFRESHES.labels(provider=provider, result="ok")

    async def _jwks_url(self) -> str:
        return self._url if isinstance(self._url, str) else await self._url()

    async def _fetch(self) -> None:
        self._last_attempt = self.clock()
        try:
            url = await self._jwks_url()
            response = await http.request(self.client, "GET", url, provider=self.provider, endpoint="jwks")
            if response.status_code != 200:
                raise ProviderUnavailable(f"{self.provider} key set answered HTTP {response.status_code}")
            try:
                keys = parse_jwks(http.json_body(response, self.provider))
            except ValueError as exc:
                raise ProviderUnavailable(f"{self.provider} key set is unusable: {exc}") from exc
        except ProviderUnavailable as exc:
            self._failures.inc()
            self._last_failure = exc
            if self._keys is None:
                raise
            log.warning("JWKS refresh failed; keeping the last good keys", extra={"provider": self.provider, "reason": exc.description})
            # Try again after the cooldown, not on every request.
            self._expires = self.clock() + self.cooldown
            return
        self._successes.inc()
        self._last_failure = None
        self._keys = keys
        self._expires = self.clock() + _max_age(response.headers.get("cache-control"))

    def _cooling_down(self) -> bool:
        return self.clock() - self._last_attempt < self.cooldown

    async def _refresh(self, *, unknown_kid: bool) -> None:
        requested = self.clock()
        async with self._lock:
            # Someone else fetched while we waited: use their result.
            if self._last_attempt >= requested:
                return
            if unknown_kid and self._cooling_down():
                return
            # An issuer that failed is asked again only after the cooldown, even before its
            # first success: a flood of tokens while it is down costs it one request, not one each.
            if self._last_failure is not None and self._cooling_down():
                return
            await self._fetch()

    async def key(self, kid: str | None) -> VerificationKey:
        """The key for kid; raises InvalidToken (unknown kid) or ProviderUnavailable."""
        if self._keys is None or self.clock() >= self._expires:
            await self._refresh(unknown_kid=False)
        keys = self._keys
        if keys is None:
            raise (self._last_failure or ProviderUnavailable(f"{self.provider} key set is not available yet")).with_traceback(None)
        found = self._lookup(keys, kid)
        if found is None:
            await self._refresh(unknown_kid=True)
            found = self._lookup(self._keys or {}, kid)
        if found is None and self._last_failure is not None:
            # The kid may be the issuer's new key, which we cannot see while its key set is
            # unreachable: the token is unverifiable (503, retry), not proven invalid (401).
            raise self._last_failure
        if found is None:
            raise InvalidToken("the token was signed with an unknown key (kid)")
        return found

    @staticmethod
    def _lookup(keys: dict[str, VerificationKey], kid: str | None) -> VerificationKey | None:
        if kid is not None:
            return keys.get(kid)
        # A token without kid is acceptable only when the set leaves no choice.
        return next(iter(keys.values())) if len(keys) == 1 else None
