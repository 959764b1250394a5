"""Generic OIDC issuers (Keycloak, Okta, Entra, Dex…) from MCP_HTTP_OIDC_PROVIDERS.

Each is `{"name", "issuer", "audience"}` (optionally `jwks_url`, `domains`, `trust_scopes`). The
issuer vouches only for the email domains in `domains` (others give personal tenants unless a
tenant names it in `issuers`); its `mcp:*` scopes only narrow the permissions unless
`trust_scopes` is true. The key set is found through
`<issuer>/.well-known/openid-configuration`, whose `issuer` must equal the configured one
(OpenID Connect Discovery §4.3). The provider name on the identity is `oidc-<name>`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import httpx

from authz_service.errors import ProviderUnavailable
from authz_service.models import Principal
from authz_service.providers import http
from authz_service.providers.auth0 import normalised_domains, principal_from_access_token
from authz_service.providers.jwks import JWKS
from authz_service.providers.jwt import JWTVerifier
from mcp_pa.core.net import is_loopback_url
from mcp_pa.core.settings import OIDCProvider as OIDCSettings


class Discovery:
    """The issuer's discovered jwks_uri, fetched once (retried after a failure)."""

    def __init__(self, issuer: str, provider: str, client: httpx.AsyncClient) -> None:
        self.issuer = issuer
        self.provider = provider
        self.client = client
        self._jwks_uri: str | None = None
        self._lock = asyncio.Lock()

    async def jwks_uri(self) -> str:
        async with self._lock:
            if self._jwks_uri is None:
                url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
                response = await http.request(self.client, "GET", url, provider=self.provider, endpoint="discovery")
                document = http.json_body(response, self.provider) if response.status_code == 200 else None
                if not isinstance(document, dict) or document.get("issuer") != self.issuer:
                    raise ProviderUnavailable(f"{self.provider} discovery document is missing or names another issuer")
                uri = document.get("jwks_uri")
                if not isinstance(uri, str) or not (uri.startswith("https://") or (uri.startswith("http://") and is_loopback_url(uri))):
                    raise ProviderUnavailable(f"{self.provider} discovery document has no usable jwks_uri")
                self._jwks_uri = uri
            return self._jwks_uri


class OIDCProvider:
    """Access tokens of one configured OIDC issuer."""

    def __init__(self, config: OIDCSettings, client: httpx.AsyncClient, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = f"oidc-{config.name}"
        self.issuers = (config.issuer,)
        source = config.jwks_url or Discovery(config.issuer, self.name, client).jwks_uri
        jwks = JWKS(source, provider=self.name, client=client, cooldown=cooldown, clock=clock)
        self.verifier = JWTVerifier(jwks, self.issuers, (config.audience,), kind="access")
        self.domains = normalised_domains(config.domains, f"MCP_HTTP_OIDC_PROVIDERS[{config.name}].domains")
        self.trust_scopes = config.trust_scopes

    async def verify(self, token: str) -> Principal:
        claims = await self.verifier.verify(token)
        return principal_from_access_token(self.name, claims, self.domains, trust_scopes=self.trust_scopes)
