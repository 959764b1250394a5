"""The Check pipeline: credentials → provider → identity → tenant → permissions → Envoy response.

The cached path (a credential seen before) is: read two headers, one SHA-256, one dict lookup,
the MCP method and tool from the routing headers or the body's first bytes (one json.loads of a
small body), one set-membership test, and the prebuilt OK response, already serialized:
`check` answers with wire bytes that the server sends as they are. Everything else (provider
calls, tenancy, header lists, serializing) happens once per credential, inside the cache.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Callable, Mapping

import httpx

from authz_service import credentials, mcp_request, metrics, policy, response
from authz_service.cache import IdentityCache
from authz_service.config_files import ReloadableFile
from authz_service.errors import Denied, ProviderUnavailable
from authz_service.models import Credential, Resolved, TenantsConfig
from authz_service.proto import attribute_context_pb2, external_auth_pb2
from authz_service.providers import Provider, ProviderRegistry
from authz_service.providers.apikey import PROVIDER as APIKEY_PROVIDER
from authz_service.providers.apikey import ApiKeyProvider, KeyStore
from authz_service.tenancy import resolve_tenant, watch_tenants
from mcp_pa.core.logs import fingerprint
from mcp_pa.core.settings import Settings

log = logging.getLogger("authz.check")


def _expiry(resolved: Resolved) -> float | None:
    return resolved.expires_at


def cache_key(credential: Credential) -> bytes:
    """SHA-256 of the credential and how it came: a JWT refused in x-api-key is judged afresh as Bearer."""
    kind = b"x-api-key\0" if credential.via_api_key_header else b"bearer\0"
    return hashlib.sha256(kind + credential.value.encode()).digest()


class Routing:
    """The provider of one request's credential, asked of the registry at most once.

    A refusal's metric and log label reuse the route the resolve step took (or its refusal),
    instead of routing the credential a second time.
    """

    __slots__ = ("_registry", "_credential", "_provider", "_refusal")

    def __init__(self, registry: ProviderRegistry, credential: Credential) -> None:
        self._registry = registry
        self._credential = credential
        self._provider: Provider | None = None
        self._refusal: Denied | None = None

    def provider(self) -> Provider:
        """The credential's provider; raises the registry's refusal (the same one on a second call)."""
        if self._provider is None and self._refusal is None:
            try:
                self._provider = self._registry.route(self._credential)
            except Denied as denied:
                self._refusal = denied
        if self._refusal is not None:
            raise self._refusal.with_traceback(None)
        assert self._provider is not None
        return self._provider

    def label(self) -> str:
        """The provider's name for metrics and logs; `unknown` when no provider takes the credential."""
        try:
            return self.provider().name
        except Denied:
            return "unknown"


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
        tenants: TenantsConfig | ReloadableFile[TenantsConfig],
        cache: IdentityCache[Resolved],
        responder: response.Responder,
    ) -> None:
        self.registry = registry
        self.keystore = keystore
        self.tenants_file = tenants if isinstance(tenants, ReloadableFile) else None
        self.tenants = tenants.value if isinstance(tenants, ReloadableFile) else tenants
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

    async def _resolve(self, credential: Credential, routing: Routing) -> Resolved:
        principal = await routing.provider().verify(credential.value)
        tenant = resolve_tenant(principal, self.tenants)
        identity = policy.build_identity(principal, tenant, self.tenants)
        allowed = response.allow(identity).SerializeToString()
        return Resolved(allowed, identity.permissions, identity.provider, principal.expires_at)

    async def check(self, request: external_auth_pb2.CheckRequest) -> bytes:
        """The serialized CheckResponse for request (allow or deny); never raises."""
        started = time.perf_counter()
        headers, counts = _request_headers(request.attributes.request.http)
        credential: Credential | None = None
        routing: Routing | None = None
        try:
            credential = credentials.extract(headers, counts)
            routing = Routing(self.registry, credential)
            if credential.is_api_key:
                self.keystore.maybe_reload()
            if self.tenants_file is not None:
                self.tenants_file.maybe_reload()
            key = cache_key(credential)
            resolved = await self.cache.get(key, lambda: self._resolve(credential, routing), _expiry)
            http = request.attributes.request.http
            call = mcp_request.of_request(headers, http.raw_body or http.body.encode())
            if call is not None:
                policy.check_edge_permission(resolved.permissions, call.method, call.name)
        except Denied as denied:
            return self._refuse(denied, credential, routing, request, started)
        except Exception:  # a bug must fail closed, never allow and never surface as a 500
            log.exception("check failed unexpectedly", extra={"request_id": request.attributes.request.http.id})
            return self._refuse(ProviderUnavailable("the authorization service failed; try again"), credential, routing, request, started)
        metrics.check_counter("allow", resolved.provider).inc()
        metrics.CHECK_SECONDS.observe(time.perf_counter() - started)
        return resolved.response

    def _refuse(
        self,
        denied: Denied,
        credential: Credential | None,
        routing: Routing | None,
        request: external_auth_pb2.CheckRequest,
        started: float,
    ) -> bytes:
        provider = routing.label() if routing is not None else "none"
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
        refusal: bytes = self.responder.deny(denied).SerializeToString()
        return refusal


def build_pipeline(settings: Settings, client: httpx.AsyncClient, clock: Callable[[], float] | None = None) -> Pipeline:
    """Every provider the settings enable, the keys file, the tenants file and the cache.

    `clock` replaces every clock of the pipeline (expiries, JWKS lifetimes, file checks) so
    tests can move time; by default expiries read time.time and intervals time.monotonic.
    """
    from authz_service.providers import build_registry

    wall, interval = (clock, clock) if clock is not None else (time.time, time.monotonic)
    keystore = KeyStore(settings.api_keys_file, clock=interval)
    registry = build_registry(settings, client, ApiKeyProvider(settings.api_key, keystore, clock=wall), clock=interval)
    return Pipeline(
        registry=registry,
        keystore=keystore,
        tenants=watch_tenants(settings.tenants_file, clock=interval) or TenantsConfig(),
        cache=IdentityCache(settings.token_cache_ttl, settings.failure_cache_ttl, settings.token_cache_max_entries, clock=wall),
        responder=response.Responder(settings.public_url),
    )
