"""Auth0 access tokens (JWT): `iss` exactly `https://<domain>/`, `aud` contains the API audience.

Permissions come from the token's `permissions` and `scope` (`mcp:read`, `mcp:write`,
`mcp:admin`); email and email_verified from its claims, plain or namespaced
(`https://example.com/email`, as Auth0 Actions add them), without a userinfo call.
"""

from __future__ import annotations

from typing import Any

from authz_service.models import Principal
from authz_service.providers.jwks import JWKS
from authz_service.providers.jwt import JWTVerifier, email_claims, permissions_from_claims

PROVIDER = "auth0"


def principal_from_access_token(provider: str, claims: dict[str, Any]) -> Principal:
    """A Principal from verified access-token claims (shared with generic OIDC issuers)."""
    email, verified = email_claims(claims)
    name = claims.get("name") or claims.get("nickname")
    return Principal(
        provider=provider,
        subject=str(claims["sub"]),
        email=email,
        email_verified=verified,
        name=name if isinstance(name, str) else None,
        scopes=permissions_from_claims(claims),
        expires_at=float(claims["exp"]),
    )


class Auth0Provider:
    """One Auth0 tenant's access tokens."""

    name = PROVIDER

    def __init__(self, issuer: str, audience: str, jwks: JWKS) -> None:
        self.issuers = (issuer,)
        self.verifier = JWTVerifier(jwks, self.issuers, (audience,), kind="access")

    async def verify(self, token: str) -> Principal:
        return principal_from_access_token(PROVIDER, await self.verifier.verify(token))
