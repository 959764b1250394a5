"""Google: ID tokens (JWT, verified against Google's JWKS) and `ya29.` access tokens (tokeninfo).

ID tokens: `iss` exactly `https://accounts.google.com` or `accounts.google.com`, `aud` one of
MCP_HTTP_GOOGLE_CLIENT_ID. Access tokens: tokeninfo must show `aud` or `azp` equal to one of
those client IDs (a token minted for another app is refused); the profile comes from userinfo,
whose `sub` must match. Google vouches for an email's domain only when `hd` (of the ID token, of
tokeninfo or userinfo) equals it. The token goes in a POST body, never in a URL that could be logged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from authz_service.domains import normalise_domain
from authz_service.errors import InvalidToken
from authz_service.models import Principal
from authz_service.providers import http
from authz_service.providers.jwks import JWKS
from authz_service.providers.jwt import JWTVerifier, claim_bool

PROVIDER = "google"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


def hosted_domain(claims: dict[str, Any]) -> frozenset[str]:
    """The Workspace domain Google vouches for (`hd`), normalised; empty for consumer accounts.

    A consumer account may hold a verified work address (and keeps it after its owner left the
    company): only `hd` says the domain's owner manages the account.
    """
    hd = claims.get("hd")
    domain = normalise_domain(hd) if isinstance(hd, str) else None
    return frozenset({domain}) if domain else frozenset()


def _principal(claims: dict[str, Any], expires_at: float | None, name: str | None = None) -> Principal:
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    return Principal(
        provider=PROVIDER,
        subject=str(claims["sub"]),
        email=email,
        email_verified=bool(email) and claim_bool(claims.get("email_verified")),
        name=name or (claims.get("name") if isinstance(claims.get("name"), str) else None),
        vouched_domains=hosted_domain(claims),
        expires_at=expires_at,
    )


class GoogleIDTokenProvider:
    """Google ID tokens (JWT)."""

    name = PROVIDER
    issuers = GOOGLE_ISSUERS

    def __init__(self, client_ids: list[str], jwks: JWKS) -> None:
        self.verifier = JWTVerifier(jwks, GOOGLE_ISSUERS, tuple(client_ids), kind="id")

    async def verify(self, token: str) -> Principal:
        claims = await self.verifier.verify(token)
        return _principal(claims, float(claims["exp"]))


class GoogleAccessTokenProvider:
    """Google OAuth access tokens (`ya29.…`), checked with tokeninfo and userinfo."""

    name = PROVIDER

    def __init__(self, client_ids: list[str], tokeninfo_url: str, userinfo_url: str, client: httpx.AsyncClient) -> None:
        self.client_ids = frozenset(client_ids)
        self.tokeninfo_url = tokeninfo_url
        self.userinfo_url = userinfo_url
        self.client = client

    async def _tokeninfo(self, token: str) -> dict[str, Any]:
        response = await http.request(
            self.client, "POST", self.tokeninfo_url, provider=PROVIDER, endpoint="tokeninfo", data={"access_token": token}
        )
        if response.status_code != 200:
            raise InvalidToken("Google does not recognise this access token (expired or revoked)")
        info = http.json_body(response, PROVIDER)
        if not isinstance(info, dict):
            raise InvalidToken("Google's tokeninfo answer is malformed")
        if not ({info.get("aud"), info.get("azp")} & self.client_ids):
            raise InvalidToken("this Google access token was issued to another application")
        if not isinstance(info.get("sub"), str) or not info["sub"]:
            raise InvalidToken("this Google access token lacks the openid scope (no subject)")
        return info

    async def _userinfo(self, token: str) -> dict[str, Any]:
        response = await http.request(
            self.client, "GET", self.userinfo_url, provider=PROVIDER, endpoint="userinfo",
            headers={"authorization": f"Bearer {token}"},
        )
        if response.status_code != 200:
            raise InvalidToken("Google refused the access token at userinfo")
        profile = http.json_body(response, PROVIDER)
        return profile if isinstance(profile, dict) else {}

    async def verify(self, token: str) -> Principal:
        info, profile = await asyncio.gather(self._tokeninfo(token), self._userinfo(token))
        if profile.get("sub") != info["sub"]:
            raise InvalidToken("Google's userinfo and tokeninfo disagree about the subject")
        expires_in = str(info.get("expires_in", ""))
        expires_at = time.time() + int(expires_in) if expires_in.isdigit() else None
        if expires_at is not None and expires_at <= time.time():
            raise InvalidToken("the Google access token has expired")
        claims = {**profile, "sub": info["sub"]}
        if "email" not in claims and isinstance(info.get("email"), str):
            claims["email"], claims["email_verified"] = info["email"], info.get("email_verified")
        if isinstance(info.get("hd"), str):
            claims["hd"] = info["hd"]
        return _principal(claims, expires_at)
