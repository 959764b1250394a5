"""`mcp-pa login`, `logout` and `connect --login` against the whole stack and fake providers.

The stack is `mcp-pa up` (PostgreSQL, authz, app, Envoy + TLS) configured with login clients of
fake Auth0, Keycloak (OIDC), Google and GitHub authorization servers (fakes/oauth.py) that
issue real signed tokens. The tests act as the person: a browser that clicks "Allow" (plain
HTTP here, a real headless chromium once), or approving a device code.
"""

from __future__ import annotations

import socket
import stat
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from mcp import Client

from fakes import FakeProviders
from mcp_pa import login as login_module
from mcp_pa.core import contract
from mcp_pa.tokens import TokenStore
from tests.clients.conftest import (
    AUTH0_CLIENT,
    KEYCLOAK_CLIENT,
    LoginProcess,
    LoginStack,
    bridge,
    browser_allows,
    first_call_refusal,
    login,
    stored,
)
from tests.support.processes import scratch_dir


def secrets_in(config: Path) -> list[str]:
    return [v for entry in stored(config).values() for p in entry.values() for k, v in p.items()
            if k in ("bearer", "refresh_token") and v]


# --- login --------------------------------------------------------------------------------------


def test_loopback_login_with_auth0_stores_tokens_0600_and_prints_whoami(login_stack: LoginStack, tmp_path: Path) -> None:
    run = login(login_stack, "auth0", tmp_path)
    url = run.authorization_url()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["audience"] == [f"{login_stack.url}"]
    assert "offline_access" in query["scope"][0].split()
    assert urllib.parse.urlsplit(query["redirect_uri"][0]).hostname == "127.0.0.1"
    home = browser_allows(url)
    assert home.status_code == 200 and "Signed in" in home.text
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "Signed in to" in stdout and "with auth0 as Alice Example <alice@example.com>" in stdout
    assert "user auth0:user-1" in stdout and "permissions read,write" in stdout
    path = tmp_path / "mcp-pa" / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = secrets_in(tmp_path)
    assert len(tokens) == 2  # the bearer and the refresh token
    for secret in tokens:
        assert secret not in stdout and secret not in stderr


def test_google_login_asks_offline_consent_and_the_id_token_is_the_bearer(login_stack: LoginStack, tmp_path: Path) -> None:
    run = login(login_stack, "google", tmp_path)
    url = run.authorization_url()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    browser_allows(url)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "with google as" in stdout and "user google:user-1" in stdout
    entry = stored(tmp_path)[login_stack.base]["google"]
    assert entry["bearer_kind"] == "id_token" and entry["bearer"].count(".") == 2 and entry["refresh_token"]


def test_github_device_login_shows_a_code_and_polls_until_approved(login_stack: LoginStack, tmp_path: Path) -> None:
    run = login(login_stack, "github", tmp_path)
    user_code = run.wait_line(r"enter the code: (\S+)").group(1)
    with httpx.Client() as http:  # the person approves on another device
        assert http.post(login_stack.github.url("/device"), data={"user_code": user_code, "decision": "allow"}).status_code == 200
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "with github as" in stdout and "user github:583231" in stdout
    assert stored(tmp_path)[login_stack.base]["github"]["bearer"].startswith("gho_")


def test_device_flag_signs_in_to_keycloak_with_a_code(login_stack: LoginStack, tmp_path: Path) -> None:
    run = login(login_stack, "oidc-keycloak", tmp_path, "--device")
    user_code = run.wait_line(r"enter the code: (\S+)").group(1)
    login_stack.keycloak.approve_device(user_code)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "with oidc-keycloak as" in stdout


def test_state_mismatch_is_refused(login_stack: LoginStack, tmp_path: Path) -> None:
    run = login(login_stack, "auth0", tmp_path)
    url = run.authorization_url()
    redirect = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["redirect_uri"][0]
    forged = httpx.get(f"{redirect}?code=stolen&state=not-the-one")
    assert forged.status_code == 400
    code, _, stderr = run.finish()
    assert code == 1 and "state that does not match" in stderr and "refused" in stderr
    assert not (tmp_path / "mcp-pa" / "tokens.json").exists()


def test_wrong_pkce_verifier_is_refused_by_the_token_endpoint(login_stack: LoginStack) -> None:
    issued = httpx.post(login_stack.auth0.url("/token"), data={"grant_type": "authorization_code", "client_id": AUTH0_CLIENT,
                                                               "code": "unknown", "code_verifier": "x"})
    assert issued.status_code == 400 and issued.json()["error"] == "invalid_grant"


def test_browser_that_never_comes_back_times_out_and_suggests_device(login_stack: LoginStack, tmp_path: Path) -> None:
    run = login(login_stack, "auth0", tmp_path, "--timeout", "2")
    run.authorization_url()
    code, _, stderr = run.finish()
    assert code == 1 and "no answer from the browser within 2 s" in stderr and "--device" in stderr


def test_busy_loopback_port_falls_back_to_another(login_stack: LoginStack, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past logins' TIME_WAIT; a listener still excludes others
        holder.bind(("127.0.0.1", login_module.PREFERRED_LOOPBACK_PORT))
        holder.listen(1)
        run = login(login_stack, "oidc-keycloak", tmp_path)
        url = run.authorization_url()
        redirect = urllib.parse.urlsplit(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["redirect_uri"][0])
        assert redirect.port != login_module.PREFERRED_LOOPBACK_PORT
        browser_allows(url)
        code, _, stderr = run.finish()
    assert code == 0, stderr


def test_several_providers_without_provider_flag_name_the_choices(login_stack: LoginStack, tmp_path: Path) -> None:
    run = LoginProcess("login", login_stack.url, "--ca", str(login_stack.ca), config=tmp_path)
    code, _, stderr = run.finish()
    assert code == 1 and "choose one with --provider (auth0, oidc-keycloak, google, github)" in stderr


def test_unreachable_provider_is_one_clear_line(login_stack: LoginStack, tmp_path: Path) -> None:
    login_stack.fake.fail("/keycloak/.well-known", 503)
    try:
        code, _, stderr = login(login_stack, "oidc-keycloak", tmp_path).finish()
    finally:
        login_stack.fake.recover()
    assert code == 1
    discovery = f"{login_stack.fake.url}/keycloak/.well-known/openid-configuration"
    assert stderr.strip().splitlines() == [f"mcp-pa login: oidc-keycloak's discovery document at {discovery} answered HTTP 503"]


def test_server_without_login_clients_names_the_settings(tmp_path: Path) -> None:
    with FakeProviders() as bare:
        bare.routes.append(lambda m, p, q, h, b: (200, {}, {"providers": []}) if p == contract.LOGIN_PATH else None)
        code, _, stderr = LoginProcess("login", f"{bare.url}/mcp", config=tmp_path).finish()
    assert code == 1
    assert "has no login clients" in stderr and "MCP_HTTP_AUTH0_LOGIN_CLIENT_ID" in stderr and "login_client_id" in stderr


def test_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    code, _, stderr = LoginProcess("login", "http://127.0.0.1:9/mcp", config=tmp_path).finish()
    assert code == 1 and stderr.startswith("mcp-pa login: cannot reach the server at http://127.0.0.1:9")


# --- connect --login ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_in(login_stack: LoginStack) -> Iterator[Path]:
    """A config dir holding an Auth0 login (with a refresh token) for the stack."""
    with scratch_dir("mcp-pa-login-config-") as config:
        run = login(login_stack, "auth0", config)
        browser_allows(run.authorization_url())
        code, _, stderr = run.finish()
        assert code == 0, stderr
        yield config


def expire(config: Path, stack: LoginStack, bearer: str | None = None) -> None:
    """Make the stored bearer look expired (or replace it), as time passing would."""
    store = TokenStore(config / "mcp-pa", use_keyring=False)
    entry = store.get(stack.base, "auth0")
    assert entry is not None
    entry.expires_at = 0.0 if bearer is None else entry.expires_at
    if bearer is not None:
        entry.bearer = bearer
    store.put(entry)


async def test_connect_login_refreshes_an_expired_token_silently_and_stores_the_rotation(login_stack: LoginStack, signed_in: Path) -> None:
    before = stored(signed_in)[login_stack.base]["auth0"]
    expire(signed_in, login_stack)
    refreshes = login_stack.auth0.requests["refresh_token"]
    async with Client(bridge(login_stack, signed_in), cache=None, read_timeout_seconds=60) as client:
        me = await client.call_tool("whoami", {})
        assert me.structured_content is not None and me.structured_content["user_id"] == "auth0:user-1"
    after = stored(signed_in)[login_stack.base]["auth0"]
    assert login_stack.auth0.requests["refresh_token"] == refreshes + 1
    assert after["bearer"] != before["bearer"] and after["refresh_token"] != before["refresh_token"]
    assert after["expires_at"] > 0


async def test_two_requests_at_expiry_share_one_refresh(login_stack: LoginStack, signed_in: Path) -> None:
    import anyio

    expire(signed_in, login_stack)
    refreshes = login_stack.auth0.requests["refresh_token"]
    async with Client(bridge(login_stack, signed_in), cache=None, read_timeout_seconds=60) as client:
        results: list[Any] = []

        async def call() -> None:
            results.append(await client.call_tool("whoami", {}))

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            group.start_soon(call)
    assert len(results) == 2 and all(not r.is_error for r in results)
    assert login_stack.auth0.requests["refresh_token"] == refreshes + 1


async def test_a_401_triggers_one_refresh_and_the_call_succeeds(login_stack: LoginStack, signed_in: Path) -> None:
    expire(signed_in, login_stack, bearer="eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.bm90LXNpZ25lZA")
    refreshes = login_stack.auth0.requests["refresh_token"]
    async with Client(bridge(login_stack, signed_in), cache=None, read_timeout_seconds=60) as client:
        me = await client.call_tool("whoami", {})
        assert not me.is_error
    assert login_stack.auth0.requests["refresh_token"] == refreshes + 1


async def test_a_revoked_refresh_token_becomes_a_json_rpc_error_saying_to_log_in(login_stack: LoginStack, tmp_path: Path) -> None:
    run = login(login_stack, "auth0", tmp_path)
    browser_allows(run.authorization_url())
    assert run.finish()[0] == 0
    login_stack.auth0.revoke_all()
    expire(tmp_path, login_stack)
    refreshes = login_stack.auth0.requests["refresh_token"]
    # The SDK's first request (initialize) already needs the token: the refusal reaches it as a JSON-RPC error.
    said = await first_call_refusal(bridge(login_stack, tmp_path))
    assert f"run `mcp-pa login {login_stack.base}` in a terminal" in said
    assert "has expired or was revoked" in said
    assert login_stack.auth0.requests["refresh_token"] == refreshes + 1  # a refused token is not offered again


def test_logout_forgets_and_revokes_the_refresh_token(login_stack: LoginStack, tmp_path: Path) -> None:
    run = login(login_stack, "oidc-keycloak", tmp_path)
    browser_allows(run.authorization_url())
    assert run.finish()[0] == 0
    refresh = stored(tmp_path)[login_stack.base]["oidc-keycloak"]["refresh_token"]
    out = LoginProcess("logout", login_stack.url, config=tmp_path)
    code, stdout, stderr = out.finish()
    assert code == 0 and "tokens forgotten and revoked" in stdout, stderr
    assert login_stack.base not in stored(tmp_path)
    again = httpx.post(login_stack.keycloak.url("/token"), data={"grant_type": "refresh_token", "client_id": KEYCLOAK_CLIENT,
                                                                 "refresh_token": refresh})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_real_headless_chromium_clicks_through_the_consent_page(login_stack: LoginStack, tmp_path: Path) -> None:
    from tests.clients.browser import Chromium

    run = login(login_stack, "oidc-keycloak", tmp_path)
    url = run.authorization_url()
    with Chromium() as browser:
        page = browser.open(url)
        browser.wait_for(page, "document.title.startsWith('Sign in')")
        browser.click(page, "#allow")
        # The fake's 302 sends the browser to the loopback listener, whose page says it is done.
        landed = browser.wait_for(page, "location.pathname === '/callback' && document.body.innerText.includes('You can close this tab') && location.href")
    assert urllib.parse.urlsplit(landed).hostname == "127.0.0.1"
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "with oidc-keycloak as Alice Example" in stdout
