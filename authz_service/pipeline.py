"""The Check pipeline: credentials → provider → identity → tenant → permissions → Envoy response.

The cached path (a credential seen before) is: read two headers, one SHA-256, one dict lookup,
one set-membership test for the MCP method, and the prebuilt OK response, already serialized:
`check` answers with wire bytes that the server sends as they are. Everything else (provider
calls, tenancy, header lists, serializing) happens once per credential, inside the cache.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Mapping

import httpx

from authz_service import credentials, metrics, policy, response
from authz_service.cache import IdentityCache
from authz_service.config_files import WatchedFile
from authz_service.errors import Denied, ProviderUnavailable
from authz_service.proto import attribute_context_pb2, external_auth_pb2
from authz_service.providers import ProviderRegistry
from authz_service.providers.apikey import PROVIDER as APIKEY_PROVIDER
from authz_service.providers.apikey import ApiKeyProvider, KeyStore
from authz_service.tenancy import TenantsConfig, resolve_tenant, watch_tenants
from mcp_pa.core.contract import HEADER_MCP_METHOD, HEADER_MCP_NAME
from mcp_pa.core.logs import fingerprint
from mcp_pa.core.settings import Settings

log = logging.getLogger("authz.check")


@dataclass(frozen=True, slots=True)
class Resolved:
    """A credential's outcome, cached: its serialized OK response and what the hot path reads.

    The Identity itself is not kept: its headers are inside `response`, and 100,000 cached
    identities then cost a few hundred bytes each instead of kilobytes (message objects).
    """

    response: bytes
    permissions: frozenset[str]
    provider: str
    expires_at: float | None


def _expiry(resolved: Resolved) -> float | None:
    return resolved.expires_at


def _request_headers(http: attribute_context_pb2.AttributeContext.HttpRequest) -> tuple[Mapping[str, str], dict[str, int] | None]:
    """Headers as a mapping, plus occurrence counts when Envoy sent the raw `header_map`."""
    if http.headers or not http.HasField("header_map"):
        return http.headers, None
    joined: dict[str, str] = {}
    counts: dict[str, int] = {}
    for entry in http.header_map.headers:
        name = entry.key.lower()
        value = entry.value or entry.raw_value.decode("utf-8", "replace")
        joined[name] = f"{joined[name]},{value}" if name in joined else value
        counts[name] = counts.get(name, 0) + 1
    return joined, counts


class Pipeline:
    """Decides one CheckRequest; holds the providers, the identity cache and the tenancy rules."""

    def __init__(
        self,
        registry: ProviderRegistry,
        keystore: KeyStore,
        tenants: TenantsConfig | WatchedFile[TenantsConfig],
        cache: IdentityCache[Resolved],
        responder: response.Responder,
    ) -> None:
        self.registry = registry
        self.keystore = keystore
        self.tenants_file = tenants if isinstance(tenants, WatchedFile) else None
        self.tenants = tenants.value if isinstance(tenants, WatchedFile) else tenants
        self.cache = cache
        self.responder = responder
        keystore.on_change = self._forget_api_keys
        if self.tenants_file is not None:
            self.tenants_file.on_change = self._tenants_changed

    def _tenants_changed(self) -> None:
        # Tenant ids, suspensions and permissions are inside every cached outcome (refusals
        # too: a domain may no longer be denied), so every credential is resolved afresh.
        assert self.tenants_file is not None
        self.tenants = self.tenants_file.value
        self.cache.drop(lambda _: True)

    def _forget_api_keys(self) -> None:
        # A changed keys file may revoke or add keys: drop every API-key outcome and every
        # cached refusal (a refusal might be a key that now exists).
        self.cache.drop(lambda v: isinstance(v, Denied) or v.provider == APIKEY_PROVIDER)

    async def _resolve(self, credential: credentials.Credential) -> Resolved:
        provider = self.registry.route(credential)
        principal = await provider.verify(credential.value)
        tenant = resolve_tenant(principal, self.tenants)
        identity = policy.build_identity(principal, tenant, self.tenants)
        allowed = response.allow(identity).SerializeToString()
        return Resolved(allowed, identity.permissions, identity.provider, principal.expires_at)

    async def check(self, request: external_auth_pb2.CheckRequest) -> bytes:
        """The serialized CheckResponse for request (allow or deny); never raises."""
        started = time.perf_counter()
        headers, counts = _request_headers(request.attributes.request.http)
        credential: credentials.Credential | None = None
        try:
            credential = credentials.extract(headers, counts)
            if credential.is_api_key:
                self.keystore.maybe_reload()
            if self.tenants_file is not None:
                self.tenants_file.maybe_reload()
            key = hashlib.sha256(credential.value.encode()).digest()
            resolved = await self.cache.get(key, lambda: self._resolve(credential), _expiry)
            policy.check_edge_permission(resolved.permissions, headers.get(HEADER_MCP_METHOD), headers.get(HEADER_MCP_NAME))
        except Denied as denied:
            return self._refuse(denied, credential, request, started)
        except Exception:  # a bug must fail closed, never allow and never surface as a 500
            log.exception("check failed unexpectedly", extra={"request_id": request.attributes.request.http.id})
            return self._refuse(ProviderUnavailable("the authorization service failed; try again"), credential, request, started)
        metrics.check_counter("allow", resolved.provider).inc()
        metrics.CHECK_SECONDS.observe(time.perf_counter() - started)
        return resolved.response

    def _refuse(
        self,
        denied: Denied,
        credential: credentials.Credential | None,
        request: external_auth_pb2.CheckRequest,
        started: float,
    ) -> bytes:
        provider = "none"
        if credential is not None:
            try:
                provider = self.registry.route(credential).name
            except Denied:
                provider = "unknown"
        metrics.check_counter(str(denied.http_status), provider).inc()
        metrics.CHECK_SECONDS.observe(time.perf_counter() - started)
        log.info(
            "check refused",
            extra={
                "status": denied.http_status,
                "error": denied.error,
                "reason": denied.description,
                "provider": provider,
                "credential": fingerprint(credential.value) if credential else None,
                "request_id": request.attributes.request.http.id,
                "path": request.attributes.request.http.path[:200],
            },
        )
        return self.responder.deny(denied).SerializeToString()


def build_pipeline(settings: Settings, client: httpx.AsyncClient) -> Pipeline:
    """Every provider the settings enable, the keys file, the tenants file and the cache."""
    from authz_service.providers import build_registry

    keystore = KeyStore(settings.api_keys_file)
    registry = build_registry(settings, client, ApiKeyProvider(settings.api_key, keystore))
    return Pipeline(
        registry=registry,
        keystore=keystore,
        tenants=watch_tenants(settings.tenants_file) or TenantsConfig(),
        cache=IdentityCache(settings.token_cache_ttl, settings.failure_cache_ttl, settings.token_cache_max_entries),
        responder=response.Responder(settings.public_url),
    )
