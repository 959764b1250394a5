"""GitHub tokens (`gho_`, `ghu_`, `ghp_`, `github_pat_`).

With MCP_HTTP_GITHUB_CLIENT_ID + SECRET the token must belong to that OAuth app
(`POST /applications/{client_id}/token`, Basic auth); personal access tokens never do, so they
are refused without a call. Accepting any GitHub token needs MCP_HTTP_GITHUB_ALLOW_ANY_TOKEN
(refused in production by the settings). Identity from `GET /user`, email from
`GET /user/emails` (primary and verified only), organisations from `GET /user/orgs` when
MCP_HTTP_GITHUB_ALLOWED_ORGS is set (not a member of any → 403). GitHub's rate limit (403 with
`x-ratelimit-remaining: 0`, or 429) is an outage: 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from authz_service.errors import AccessDenied, InvalidToken, ProviderUnavailable
from authz_service.models import Principal
from authz_service.providers import http

PROVIDER = "github"
PAT_PREFIXES = ("ghp_", "github_pat_")
API_VERSION_HEADERS = {"accept": "application/vnd.github+json", "x-github-api-version": "2022-11-28"}


def _rate_limited(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.headers.get("x-ratelimit-remaining") == "0"


class GitHubProvider:
    """Verifies GitHub tokens against the GitHub (Enterprise) REST API."""

    name = PROVIDER

    def __init__(
        self,
        api_url: str,
        client: httpx.AsyncClient,
        client_id: str | None,
        client_secret: str | None,
        allow_any_token: bool,
        allowed_orgs: list[str],
    ) -> None:
        if not (client_id and client_secret) and not allow_any_token:
            raise ValueError(
                "MCP_HTTP_GITHUB_ENABLED needs MCP_HTTP_GITHUB_CLIENT_ID and MCP_HTTP_GITHUB_CLIENT_SECRET "
                "(or MCP_HTTP_GITHUB_ALLOW_ANY_TOKEN=true, development only)"
            )
        self.api = api_url.rstrip("/")
        self.client = client
        self.app = (client_id, client_secret) if client_id and client_secret else None
        self.allowed_orgs = frozenset(o.lower() for o in allowed_orgs)

    async def _get(self, path: str, token: str, endpoint: str) -> httpx.Response:
        response = await http.request(
            self.client, "GET", f"{self.api}{path}", provider=PROVIDER, endpoint=endpoint,
            headers={**API_VERSION_HEADERS, "authorization": f"Bearer {token}"},
        )
        if _rate_limited(response):
            raise ProviderUnavailable("GitHub's rate limit is exhausted; try again later", retry_after=60)
        return response

    async def _check_app(self, token: str) -> None:
        assert self.app is not None
        if token.startswith(PAT_PREFIXES):
            raise InvalidToken("personal access tokens are not accepted; sign in through this server's GitHub app")
        response = await http.request(
            self.client, "POST", f"{self.api}/applications/{self.app[0]}/token", provider=PROVIDER,
            endpoint="check_token", auth=self.app, json={"access_token": token}, headers=API_VERSION_HEADERS,
        )
        if _rate_limited(response):
            raise ProviderUnavailable("GitHub's rate limit is exhausted; try again later", retry_after=60)
        if response.status_code == 401:
            # Our own client credentials were refused: a server misconfiguration, not the caller's fault.
            raise ProviderUnavailable("GitHub refused this server's app credentials")
        if response.status_code != 200:
            raise InvalidToken("this GitHub token was not issued to this server's GitHub app (or was revoked)")

    async def _email(self, token: str) -> str | None:
        response = await self._get("/user/emails", token, "emails")
        emails = http.json_body(response, PROVIDER) if response.status_code == 200 else []
        for entry in emails if isinstance(emails, list) else []:
            if isinstance(entry, dict) and entry.get("primary") is True and entry.get("verified") is True:
                email = entry.get("email")
                return email if isinstance(email, str) and "@" in email else None
        return None

    async def _orgs(self, token: str) -> tuple[str, ...]:
        if not self.allowed_orgs:
            return ()
        response = await self._get("/user/orgs?per_page=100", token, "orgs")
        orgs = http.json_body(response, PROVIDER) if response.status_code == 200 else []
        return tuple(o["login"].lower() for o in orgs if isinstance(o, dict) and isinstance(o.get("login"), str)) if isinstance(orgs, list) else ()

    async def _user(self, token: str) -> dict[str, Any]:
        response = await self._get("/user", token, "user")
        if response.status_code != 200:
            raise InvalidToken("GitHub does not recognise this token (expired or revoked)")
        user = http.json_body(response, PROVIDER)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise ProviderUnavailable("GitHub's /user answer is malformed")
        return user

    async def verify(self, token: str) -> Principal:
        if self.app is not None:
            await self._check_app(token)
        user, email, orgs = await asyncio.gather(self._user(token), self._email(token), self._orgs(token))
        if self.allowed_orgs and not (self.allowed_orgs & set(orgs)):
            raise AccessDenied("your GitHub account is not a member of an organisation allowed on this server")
        name = user.get("name") or user.get("login")
        return Principal(
            provider=PROVIDER,
            subject=str(user["id"]),
            email=email,
            email_verified=email is not None,
            name=name if isinstance(name, str) else None,
            groups=orgs,
        )
