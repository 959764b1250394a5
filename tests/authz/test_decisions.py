"""Every row of the contract's decision table, through a real gRPC socket."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from authz_service.models import Credential
from authz_service.providers import Provider
from fakes import FakeProviders
from mcp_pa.core import contract
from tests.authz.conftest import AUTH0_AUDIENCE, RESOURCE_METADATA, STATIC_KEY, AuthzClient, issuer, make_settings, serve


async def test_valid_api_key_is_allowed_with_identity_headers_and_credential_removed(authz: AuthzClient) -> None:
    d = await authz.check({"x-api-key": STATIC_KEY})
    assert d.allowed and d.raw.status.code == 0
    assert d.headers == {
        contract.HEADER_USER_ID: "apikey:default",
        contract.HEADER_TENANT_ID: "default",
        contract.HEADER_PERMISSIONS: "admin,read,write",
        contract.HEADER_PROVIDER: "apikey",
    }
    # The credential never reaches the app, nor do identity headers this identity does not set.
    assert set(d.removed) == {"authorization", "x-api-key", contract.HEADER_EMAIL, contract.HEADER_NAME}
    for option in d.raw.ok_response.headers:
        assert option.HasField("append") and option.append.value is False
        assert option.append_action == option.OVERWRITE_IF_EXISTS_OR_ADD


async def test_api_key_as_bearer_token_is_allowed(authz: AuthzClient) -> None:
    d = await authz.bearer(STATIC_KEY)
    assert d.allowed and d.headers[contract.HEADER_USER_ID] == "apikey:default"


async def test_no_credential_is_rejected_with_401_and_resource_metadata_only(authz: AuthzClient) -> None:
    d = await authz.check({})
    assert (d.allowed, d.status) == (False, 401)
    assert d.headers["www-authenticate"] == f'Bearer resource_metadata="{RESOURCE_METADATA}", scope="mcp:read mcp:write"'
    assert d.headers["content-type"] == "application/json"
    assert set(d.body or {}) == {"error", "error_description"}
    assert d.raw.status.code == 16  # UNAUTHENTICATED


async def test_unknown_api_key_is_rejected_with_401_invalid_token(authz: AuthzClient) -> None:
    d = await authz.check({"x-api-key": "mcp_sk_not-a-real-key"})
    assert d.status == 401
    assert d.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="unknown API key", resource_metadata="{RESOURCE_METADATA}"'
    )
    assert d.body == {"error": "invalid_token", "error_description": "unknown API key"}


async def test_two_different_credentials_are_rejected_with_400_invalid_request(authz: AuthzClient) -> None:
    d = await authz.check({"authorization": "Bearer mcp_sk_one", "x-api-key": "mcp_sk_two"})
    assert d.status == 400 and d.raw.status.code == 3
    assert d.headers["www-authenticate"].startswith('Bearer error="invalid_request"')
    assert d.body and d.body["error"] == "invalid_request"


async def test_the_same_key_in_both_headers_is_one_credential(authz: AuthzClient) -> None:
    d = await authz.check({"authorization": f"Bearer {STATIC_KEY}", "x-api-key": STATIC_KEY})
    assert d.allowed


async def test_duplicate_authorization_header_joined_by_envoy_is_rejected_with_400(authz: AuthzClient) -> None:
    d = await authz.check({"authorization": f"Bearer {STATIC_KEY},Bearer {STATIC_KEY}"})
    assert d.status == 400 and d.body and d.body["error"] == "invalid_request"


async def test_duplicate_authorization_in_raw_header_map_is_rejected_with_400(authz: AuthzClient) -> None:
    d = await authz.check(header_map=[("authorization", f"Bearer {STATIC_KEY}"), ("Authorization", f"Bearer {STATIC_KEY}")])
    assert d.status == 400


async def test_single_credential_in_raw_header_map_is_allowed(authz: AuthzClient) -> None:
    d = await authz.check(header_map=[("x-api-key", STATIC_KEY), ("mcp-method", "tools/list")])
    assert d.allowed


async def test_suspended_tenant_is_refused_with_403_access_denied(fake: FakeProviders, tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("domains:\n  acme.com: acme\ntenants:\n  acme:\n    suspended: true\n    issuers: [auth0]\n")
    client = await serve(make_settings(fake, tenants_file=tenants))
    try:
        token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|s1", email="bob@acme.com", email_verified=True)
        d = await client.bearer(token)
        assert (d.status, d.body["error"]) == (403, "access_denied")
        assert "suspended" in d.body["error_description"]
        assert "www-authenticate" not in d.headers
        assert d.raw.status.code == 7  # PERMISSION_DENIED
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("method", "name", "needed"),
    [("tools/call", "list_audit_events", "admin"), ("tools/call", "create_todo", "write")],
)
async def test_identity_lacking_the_tool_permission_is_refused_with_403_insufficient_scope(
    fake: FakeProviders, authz: AuthzClient, method: str, name: str, needed: str
) -> None:
    token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|reader", scope="openid mcp:read")
    d = await authz.bearer(token, **{"mcp-method": method, "mcp-name": name})
    assert d.status == 403
    assert d.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="mcp:{needed}", resource_metadata="{RESOURCE_METADATA}"'
    )
    assert d.body and d.body["error"] == "insufficient_scope"


async def test_read_tool_with_read_scope_is_allowed(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|reader", scope="openid mcp:read")
    d = await authz.bearer(token, **{"mcp-method": "tools/call", "mcp-name": "list_todos"})
    assert d.allowed and d.headers[contract.HEADER_PERMISSIONS] == "read"
    d = await authz.bearer(token, **{"mcp-method": "resources/read"})
    assert d.allowed


async def test_provider_outage_without_cached_decision_is_503_with_retry_after(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.outage-token", sub="g-outage", aud="google-client-1.apps.googleusercontent.com")
    fake.fail("/google/tokeninfo", 503)
    try:
        d = await authz.bearer("ya29.outage-token")
    finally:
        fake.recover()
    assert d.status == 503 and d.raw.status.code == 14
    assert d.headers["retry-after"] == "7"  # the provider's own Retry-After is passed on
    assert d.body and d.body["error"] == "temporarily_unavailable"
    # Never cached as a refusal either: the next check after recovery succeeds.
    assert (await authz.bearer("ya29.outage-token")).allowed


async def test_provider_timeout_is_503_never_allow(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.slow-token", sub="g-slow", aud="google-client-1.apps.googleusercontent.com")
    fake.fail("/google/tokeninfo", "hang")
    try:
        d = await authz.bearer("ya29.slow-token")
    finally:
        fake.recover()
    assert d.status == 503 and "retry-after" in d.headers


async def test_rate_limited_provider_is_503(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.limited", sub="g-limited", aud="google-client-1.apps.googleusercontent.com")
    fake.fail("/google/", 429)
    try:
        d = await authz.bearer("ya29.limited")
    finally:
        fake.recover()
    assert d.status == 503


async def test_description_with_quotes_cannot_break_the_www_authenticate_header(authz: AuthzClient) -> None:
    from authz_service.errors import InvalidToken

    header = authz.running.pipeline.responder.www_authenticate(InvalidToken('bad "token" \\ é'))
    assert header is not None and header.count('"') == 6 and "\\" not in header and "é" not in header


@pytest.mark.parametrize(
    ("token", "provider"),
    [("ya29.refused-once", "google"), ("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSJ9.c2ln", "unknown")],
    ids=["provider-refuses", "no-provider-takes-it"],
)
async def test_a_refused_credential_is_routed_once_and_labelled_by_that_route(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, token: str, provider: str
) -> None:
    client = await serve(make_settings(fake))
    registry = client.running.pipeline.registry
    routes: list[str] = []
    route = registry.route

    def counted(credential: Credential) -> Provider:
        routes.append(credential.value)
        return route(credential)

    monkeypatch.setattr(registry, "route", counted)
    try:
        with caplog.at_level(logging.INFO, logger="authz.check"):
            assert (await client.bearer(token)).status == 401
    finally:
        await client.close()
    assert routes == [token]
    assert [r.provider for r in caplog.records if r.getMessage() == "check refused"] == [provider]
