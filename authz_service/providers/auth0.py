"""Auth0 access tokens (JWT): `iss` exactly `https://<domain>/`, `aud` contains the API audience.

Permissions: the RBAC `permissions` claim (assigned by the tenant's administrators) is the
grant; `scope` (`mcp:read`, `mcp:write`, `mcp:admin`) only narrows it. The Auth0 tenant vouches
for the email domains of MCP_HTTP_AUTH0_DOMAINS only; email and email_verified from its claims, plain or namespaced
(`https://example.com/email`, as Auth0 Actions add them), without a userinfo call.
"""

from __future__ import annotations

from typing import Any

from authz_service.domains import normalise_domain
from authz_service.models import Principal
from authz_service.providers.jwks import JWKS
from authz_service.providers.jwt import JWTVerifier, all_token_permissions, assigned_permissions, email_claims, requested_scopes

PROVIDER = "auth0"


def principal_from_access_token(
    provider: str, claims: dict[str, Any], vouched_domains: frozenset[str], *, trust_scopes: bool = False, rbac: bool = False
) -> Principal:
    """A Principal from verified access-token claims (shared with generic OIDC issuers).

    `rbac`: the `permissions` claim is administrator-assigned (Auth0); `trust_scopes`: every
    `mcp:*` entry is a grant (an issuer configured to decide permissions itself).
    """
    email, verified = email_claims(claims)
    name = claims.get("name") or claims.get("nickname")
    if trust_scopes:
        granted, requested = all_token_permissions(claims), None
    else:
        granted, requested = (assigned_permissions(claims) if rbac else None), requested_scopes(claims)
    return Principal(
        provider=provider,
        subject=str(claims["sub"]),
        email=email,
        email_verified=verified,
        name=name if isinstance(name, str) else None,
        vouched_domains=vouched_domains,
        granted=granted,
        requested=requested,
        expires_at=float(claims["exp"]),
    )


def normalised_domains(domains: list[str], setting: str) -> frozenset[str]:
    """Configured email domains in their comparable form; ValueError names the setting."""
    found: set[str] = set()
    for domain in domains:
        normalised = normalise_domain(domain)
        if normalised is None:
            raise ValueError(f"{setting}: {domain!r} is not a valid domain name")
        found.add(normalised)
    return frozenset(found)


class Auth0Provider:
    """One Auth0 tenant's access tokens."""

    name = PROVIDER

    def __init__(self, issuer: str, audience: str, jwks: JWKS, domains: list[str] | None = None) -> None:
        self.issuers = (issuer,)
        self.verifier = JWTVerifier(jwks, self.issuers, (audience,), kind="access")
        self.domains = normalised_domains(domains or [], "MCP_HTTP_AUTH0_DOMAINS")

    async def verify(self, token: str) -> Principal:
        return principal_from_access_token(PROVIDER, await self.verifier.verify(token), self.domains, rbac=True)
