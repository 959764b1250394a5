"""The MCP SDK's own OAuth client (`OAuthClientProvider`) against the whole stack: discovery, dynamic
registration, sign-in, `tools/call`, and step-up when a read-only token calls a write tool.

The stack is test_login's `mcp-pa up` with Auth0, Keycloak (OIDC), Google and GitHub all configured;
the test is the browser: it opens the authorization URL, clicks "Allow" on the fake consent page
and hands the redirect's code back to the SDK.
"""

from __future__ import annotations

import contextlib
import html
import re
import ssl
import urllib.parse
from typing import AsyncIterator

import httpx
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from mcp_pa.core import contract
from tests.clients.conftest import LoginStack  # the login_stack fixture is conftest's (test_login's stack)

REDIRECT_URI = "http://127.0.0.1:33418/callback"  # never listened on: the test reads the redirect itself


class MemoryStorage(TokenStorage):
    """What a client keeps between requests: its registration and its tokens."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """Visits authorization URLs, clicks Allow, and returns the code the redirect carries.

    `grant_only` makes the next consent narrower than asked (the user unticks a scope), as a
    consent screen or an administrator's policy may.
    """

    def __init__(self) -> None:
        self.visited: list[dict[str, str]] = []
        self.grant_only: str | None = None
        self._redirect: str | None = None

    async def open(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        params = dict(urllib.parse.parse_qsl(parts.query))
        self.visited.append(params)
        if self.grant_only is not None:
            params["scope"], self.grant_only = self.grant_only, None
        async with httpx.AsyncClient(timeout=20) as web:
            page = await web.get(parts._replace(query=urllib.parse.urlencode(params)).geturl())
            assert page.status_code == 200, page.text
            action = html.unescape(re.search(r"action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
            request_id = re.search(r"name='request' value='([^']+)'", page.text).group(1)  # type: ignore[union-attr]
            answer = await web.post(action, data={"request": request_id, "decision": "allow"})
        assert answer.status_code == 302
        self._redirect = answer.headers["location"]

    async def callback(self) -> AuthorizationCodeResult:
        assert self._redirect is not None, "the SDK asked for the code before opening the browser"
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self._redirect).query))
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"))


def _provider(stack: LoginStack, browser: Browser, storage: MemoryStorage) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
        client_name="pytest oauth client",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(stack.url, metadata, storage, redirect_handler=browser.open, callback_handler=browser.callback)


@contextlib.asynccontextmanager
async def _signed_in_client(stack: LoginStack, browser: Browser, storage: MemoryStorage) -> AsyncIterator[Client]:
    """An SDK client whose HTTP requests carry the SDK's OAuth flow."""
    verify = ssl.create_default_context(cafile=str(stack.ca))
    async with (
        httpx2.AsyncClient(auth=_provider(stack, browser, storage), verify=verify, timeout=30) as http,
        Client(streamable_http_client(stack.url, http_client=http), cache=None) as client,
    ):
        yield client


async def test_sdk_oauth_client_goes_from_nothing_to_tools_call_with_every_provider_configured(login_stack: LoginStack) -> None:
    prm = httpx.get(f"{login_stack.base}{contract.PRM_MCP_PATH}", verify=str(login_stack.ca)).json()
    assert prm["authorization_servers"][0] == login_stack.auth0.issuer.issuer  # type: ignore[union-attr]
    assert len(prm["authorization_servers"]) == 4  # Auth0, Keycloak, Google, GitHub
    browser, storage = Browser(), MemoryStorage()
    registrations = login_stack.auth0.requests["register"]
    async with _signed_in_client(login_stack, browser, storage) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    assert login_stack.auth0.requests["register"] == registrations + 1  # registered itself at Auth0 (RFC 7591)
    assert storage.client is not None and storage.client.client_id in login_stack.auth0.clients
    assert browser.visited[0]["scope"] == "mcp:read mcp:write"  # the 401 challenge's scope, not mcp:admin
    assert browser.visited[0]["resource"] == login_stack.url


async def test_read_only_token_steps_up_to_the_tool_scope_and_the_call_succeeds(login_stack: LoginStack) -> None:
    browser, storage = Browser(), MemoryStorage()
    browser.grant_only = "mcp:read"
    async with _signed_in_client(login_stack, browser, storage) as client:
        assert not (await client.call_tool("list_todos", {})).is_error
        assert storage.tokens is not None and storage.tokens.scope == "mcp:read"
        created = await client.call_tool("create_todo", {"title": "stepped up"})
    assert not created.is_error, created
    assert len(browser.visited) == 2, "the 403 insufficient_scope did not send the client back to sign in"
    assert set(browser.visited[1]["scope"].split()) == {"mcp:read", "mcp:write"}
    assert storage.tokens is not None and set((storage.tokens.scope or "").split()) == {"mcp:read", "mcp:write"}

