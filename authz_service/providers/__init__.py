"""Phase 2: route a credential to exactly one provider, without calling any provider's API.

JWTs go to the provider that owns their unverified `iss`; `ya29.` tokens to Google;
`gho_`/`ghu_`/`ghp_`/`github_pat_` to GitHub; `mcp_sk_…` and `x-api-key` to API keys.
Anything else is compared against the API keys too (the single MCP_HTTP_API_KEY may have any
form), which costs one hash and never leaves the process.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Protocol

from authz_service.errors import InvalidToken
from authz_service.models import Credential, Principal

if TYPE_CHECKING:
    import httpx

    from mcp_pa.core.settings import Settings

GOOGLE_ACCESS_TOKEN_PREFIX = "ya29."
GITHUB_TOKEN_PREFIXES = ("gho_", "ghu_", "ghp_", "github_pat_")


class Provider(Protocol):
    """One way of verifying a credential: `providers/<name>.py`."""

    name: str

    async def verify(self, token: str) -> Principal: ...


class JWTProvider(Provider, Protocol):
    """A provider of signed JWTs, chosen by the token's exact `iss`."""

    @property
    def issuers(self) -> tuple[str, ...]: ...


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class ProviderRegistry:
    """Picks the provider of a credential from its shape alone."""

    def __init__(
        self,
        apikey: Provider,
        jwt_providers: list[JWTProvider],
        google_access: Provider | None,
        github: Provider | None,
    ) -> None:
        self.apikey = apikey
        self.google_access = google_access
        self.github = github
        self.by_issuer: dict[str, JWTProvider] = {}
        for provider in jwt_providers:
            for issuer in provider.issuers:
                if issuer in self.by_issuer:
                    raise ValueError(f"issuer {issuer!r} is configured for two providers")
                self.by_issuer[issuer] = provider

    def route(self, credential: Credential) -> Provider:
        """The one provider for this credential; raises InvalidToken when nobody accepts its kind."""
        token = credential.value
        if credential.is_api_key:
            return self.apikey
        if token.startswith(GOOGLE_ACCESS_TOKEN_PREFIX):
            if self.google_access is None:
                raise InvalidToken("Google sign-in is not configured on this server")
            return self.google_access
        if token.startswith(GITHUB_TOKEN_PREFIXES):
            if self.github is None:
                raise InvalidToken("GitHub sign-in is not enabled on this server")
            return self.github
        if token.count(".") == 4:
            raise InvalidToken("encrypted tokens (JWE) are not accepted")
        if looks_like_jwt(token):
            from authz_service.providers.jwt import unverified_issuer

            issuer = unverified_issuer(token)
            provider = self.by_issuer.get(issuer)
            if provider is None:
                raise InvalidToken("the token's issuer is not accepted by this server")
            return provider
        return self.apikey


def build_registry(
    settings: Settings, client: httpx.AsyncClient, apikey: Provider, clock: Callable[[], float] = time.monotonic
) -> ProviderRegistry:
    """The registry of every provider the settings enable."""
    from authz_service.providers.auth0 import Auth0Provider
    from authz_service.providers.github import GitHubProvider
    from authz_service.providers.google import GoogleAccessTokenProvider, GoogleIDTokenProvider
    from authz_service.providers.jwks import JWKS
    from authz_service.providers.oidc import OIDCProvider

    cooldown = settings.jwks_refetch_cooldown
    jwt_providers: list[JWTProvider] = []
    google_access: Provider | None = None
    if settings.google_client_id:
        jwks = JWKS(settings.google_jwks_url, provider="google", client=client, cooldown=cooldown, clock=clock)
        jwt_providers.append(GoogleIDTokenProvider(settings.google_client_id, jwks))
        google_access = GoogleAccessTokenProvider(
            settings.google_client_id, settings.google_tokeninfo_url, settings.google_userinfo_url, client
        )
    issuer, jwks_url = settings.auth0_issuer_url, settings.auth0_jwks
    if issuer and jwks_url:
        jwks = JWKS(jwks_url, provider="auth0", client=client, cooldown=cooldown, clock=clock)
        jwt_providers.append(Auth0Provider(issuer, settings.auth0_audience or settings.resource_url, jwks, settings.auth0_domains))
    jwt_providers += [OIDCProvider(p, client, cooldown, clock) for p in settings.oidc_providers]
    github = None
    if settings.github_enabled:
        github = GitHubProvider(
            settings.github_api_url,
            client,
            settings.github_client_id,
            settings.github_client_secret,
            settings.github_allow_any_token,
            settings.github_allowed_orgs,
        )
    return ProviderRegistry(apikey=apikey, jwt_providers=jwt_providers, google_access=google_access, github=github)
