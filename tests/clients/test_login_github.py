"""Signing in with GitHub: a GitHub App's expiring `ghu_` tokens refreshed by `connect --login`, and classic `gho_` tokens.

The stack and the fake GitHub are those of tests/clients/conftest.py (`login_stack`); the fake
GitHub switches between a classic OAuth app (`gho_`, never expires) and a GitHub App with
"expire user authorization tokens" (`ghu_` for 8 hours + a `ghr_` refresh token that each
refresh replaces; errors answered with HTTP 200, as github.com does).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from fakes.oauth import GITHUB_USER_TOKEN_LIFETIME
from mcp_pa.tokens import TokenStore
from tests.clients.conftest import GITHUB_CLIENT, LoginStack, first_call_refusal, login, stored
from tests.clients.conftest import bridge as shared_bridge
from tests.support.processes import scratch_dir

USER_ID = "github:583231"


@pytest.fixture
def github_app(login_stack: LoginStack) -> Iterator[LoginStack]:
    """The fake GitHub as a GitHub App with expiring user tokens, for one test."""
    login_stack.github.github_app_tokens = True
    try:
        yield login_stack
    finally:
        login_stack.github.github_app_tokens = False


def device_login(stack: LoginStack, config: Path) -> tuple[int, str, str]:
    """`mcp-pa login URL --provider github`, the person approving the code on another device."""
    run = login(stack, "github", config)
    user_code = run.wait_line(r"enter the code: (\S+)").group(1)
    with httpx.Client() as http:
        assert http.post(stack.github.url("/device"), data={"user_code": user_code, "decision": "allow"}).status_code == 200
    return run.finish()


def bridge(stack: LoginStack, config: Path) -> StdioServerParameters:
    return shared_bridge(stack, config, "--provider", "github")


def expire(stack: LoginStack, config: Path) -> None:
    """Eight hours pass: GitHub stops honouring the `ghu_` tokens, and the stored expiry is behind us."""
    stack.github.expire_access_tokens()
    store = TokenStore(config / "mcp-pa", use_keyring=False)
    entry = store.get(stack.base, "github")
    assert entry is not None
    entry.expires_at = time.time() - 1
    store.put(entry)


def github_refresh(stack: LoginStack, refresh_token: str) -> httpx.Response:
    return httpx.post(stack.github.url("/token"), headers={"accept": "application/json"},
                      data={"grant_type": "refresh_token", "client_id": GITHUB_CLIENT, "refresh_token": refresh_token})


@pytest.fixture(scope="module")
def app_signed_in(login_stack: LoginStack) -> Iterator[Path]:
    """A config dir holding a GitHub App login (expiring `ghu_` + `ghr_`) for the stack."""
    with scratch_dir("mcp-pa-github-config-") as config:
        login_stack.github.github_app_tokens = True
        try:
            code, _, stderr = device_login(login_stack, config)
        finally:
            login_stack.github.github_app_tokens = False
        assert code == 0, stderr
        yield config


def test_github_app_device_login_stores_an_expiring_token_and_its_refresh_token(github_app: LoginStack, tmp_path: Path) -> None:
    started = time.time()
    code, stdout, stderr = device_login(github_app, tmp_path)
    assert code == 0, stderr
    assert f"user {USER_ID}" in stdout and "refreshable" in stdout and "not refreshable" not in stdout
    entry = stored(tmp_path)[github_app.base]["github"]
    assert entry["bearer"].startswith("ghu_") and entry["refresh_token"].startswith("ghr_")
    assert started + GITHUB_USER_TOKEN_LIFETIME - 5 <= entry["expires_at"] <= time.time() + GITHUB_USER_TOKEN_LIFETIME + 5
    for secret in (entry["bearer"], entry["refresh_token"]):
        assert secret not in stdout and secret not in stderr


async def test_connect_login_refreshes_an_expired_github_app_token_and_stores_the_rotated_refresh_token(
    login_stack: LoginStack, app_signed_in: Path
) -> None:
    before = stored(app_signed_in)[login_stack.base]["github"]
    expire(login_stack, app_signed_in)
    assert httpx.get(f"{login_stack.fake.url}/github/user", headers={"authorization": f"Bearer {before['bearer']}"}).status_code == 401
    refreshes = login_stack.github.requests["refresh_token"]
    async with Client(bridge(login_stack, app_signed_in), cache=None, read_timeout_seconds=60) as client:
        me = await client.call_tool("whoami", {})
        assert me.structured_content is not None and me.structured_content["user_id"] == USER_ID
    assert login_stack.github.requests["refresh_token"] == refreshes + 1
    after = stored(app_signed_in)[login_stack.base]["github"]
    assert after["bearer"].startswith("ghu_") and after["bearer"] != before["bearer"]
    assert after["refresh_token"].startswith("ghr_") and after["refresh_token"] != before["refresh_token"]
    assert after["expires_at"] > time.time() + GITHUB_USER_TOKEN_LIFETIME - 60
    # GitHub invalidated the used refresh token: only the stored rotation keeps the sign-in alive.
    assert github_refresh(login_stack, before["refresh_token"]).json()["error"] == "bad_refresh_token"


async def test_a_bad_github_refresh_token_answered_with_http_200_becomes_the_json_rpc_error_saying_to_log_in(
    github_app: LoginStack, tmp_path: Path
) -> None:
    code, _, stderr = device_login(github_app, tmp_path)
    assert code == 0, stderr
    github_app.github.revoke_all()
    refused = github_refresh(github_app, stored(tmp_path)[github_app.base]["github"]["refresh_token"])
    assert refused.status_code == 200 and refused.json()["error"] == "bad_refresh_token"  # github.com's way of refusing
    expire(github_app, tmp_path)
    refreshes = github_app.github.requests["refresh_token"]
    said = await first_call_refusal(bridge(github_app, tmp_path))
    assert f"run `mcp-pa login {github_app.base} --provider github` in a terminal" in said
    assert "has expired or was revoked: github refused the refresh token (The refresh token passed is incorrect or expired.)" in said
    assert github_app.github.requests["refresh_token"] == refreshes + 1  # a refused token is not offered again


async def test_a_classic_github_oauth_app_login_stores_no_expiry_and_is_never_refreshed(login_stack: LoginStack, tmp_path: Path) -> None:
    code, stdout, stderr = device_login(login_stack, tmp_path)
    assert code == 0, stderr
    assert "no expiry; not refreshable" in stdout
    entry = stored(tmp_path)[login_stack.base]["github"]
    assert entry["bearer"].startswith("gho_") and entry["expires_at"] is None and entry["refresh_token"] is None
    refreshes = login_stack.github.requests["refresh_token"]
    async with Client(bridge(login_stack, tmp_path), cache=None, read_timeout_seconds=60) as client:
        for _ in range(2):
            me = await client.call_tool("whoami", {})
            assert me.structured_content is not None and me.structured_content["user_id"] == USER_ID
    assert login_stack.github.requests["refresh_token"] == refreshes
    assert stored(tmp_path)[login_stack.base]["github"] == entry
