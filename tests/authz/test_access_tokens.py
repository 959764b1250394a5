"""Opaque access tokens: Google (`ya29.`) through tokeninfo/userinfo, GitHub through its REST API."""

from __future__ import annotations

import pytest

from authz_service.tenancy import personal_tenant
from fakes import FakeProviders
from mcp_pa.core import contract
from tests.authz.conftest import GOOGLE_CLIENT, AuthzClient, github_user, make_settings, serve


async def test_google_access_token_is_allowed_with_profile_from_userinfo(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.good", sub="g-100", aud=GOOGLE_CLIENT, email="kim@gmail.com", name="Kim")
    d = await authz.bearer("ya29.good")
    assert d.allowed
    assert d.headers[contract.HEADER_USER_ID] == "google:g-100"
    assert d.headers[contract.HEADER_EMAIL] == "kim@gmail.com"
    assert d.headers[contract.HEADER_NAME] == "Kim"
    assert d.headers[contract.HEADER_TENANT_ID].startswith("u___")  # gmail.com is a personal domain


async def test_google_access_token_matching_by_azp_is_allowed(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.azp", sub="g-101", aud="some-api", azp=GOOGLE_CLIENT)
    assert (await authz.bearer("ya29.azp")).allowed


async def test_google_access_token_of_another_client_is_rejected_with_401(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.other-client", sub="g-102", aud="another-app.apps.googleusercontent.com")
    d = await authz.bearer("ya29.other-client")
    assert d.status == 401 and "another application" in d.body["error_description"]


async def test_unknown_google_access_token_is_rejected_with_401(authz: AuthzClient) -> None:
    assert (await authz.bearer("ya29.revoked-or-made-up")).status == 401


async def test_google_access_token_is_sent_in_a_post_body_not_a_url(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_google_token("ya29.body-only", sub="g-103", aud=GOOGLE_CLIENT)
    assert (await authz.bearer("ya29.body-only")).allowed
    assert not any("ya29" in path for path in fake.requests)


async def test_github_token_of_this_app_is_allowed_with_primary_verified_email(fake: FakeProviders, authz: AuthzClient) -> None:
    user = github_user(583231, email="octo@github-corp.example")
    user.emails.insert(0, {"email": "old@elsewhere.example", "primary": False, "verified": True})
    fake.add_github_token("gho_goodtoken", user)
    d = await authz.bearer("gho_goodtoken")
    assert d.allowed
    assert d.headers[contract.HEADER_USER_ID] == "github:583231"
    assert d.headers[contract.HEADER_PROVIDER] == "github"
    assert d.headers[contract.HEADER_EMAIL] == "octo@github-corp.example"
    # GitHub never vouches for a domain: without a tenant naming it in `issuers`, a personal tenant.
    assert d.headers[contract.HEADER_TENANT_ID] == personal_tenant("github:583231")


async def test_github_unverified_primary_email_is_ignored(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_github_token("ghu_unverified", github_user(7001, email="who@corp.example", verified=False))
    d = await authz.bearer("ghu_unverified")
    assert d.allowed and contract.HEADER_EMAIL not in d.headers
    assert d.headers[contract.HEADER_TENANT_ID].startswith("u___")


async def test_github_token_of_another_app_is_rejected_with_401(fake: FakeProviders, authz: AuthzClient) -> None:
    other = github_user(7002)
    other.app_client_id = "Iv1.someone-else"
    fake.add_github_token("gho_otherapp", other)
    d = await authz.bearer("gho_otherapp")
    assert d.status == 401 and "GitHub app" in d.body["error_description"]


@pytest.mark.parametrize("token", ["ghp_personalaccesstoken", "github_pat_11ABCDEFG_finegrained"])
async def test_github_personal_access_token_is_rejected_without_calling_github(fake: FakeProviders, authz: AuthzClient, token: str) -> None:
    fake.add_github_token(token, github_user(7003, app=False))
    before = fake.count("/github/")
    d = await authz.bearer(token)
    assert d.status == 401
    assert fake.count("/github/") == before


async def test_github_rate_limit_is_503(fake: FakeProviders, authz: AuthzClient) -> None:
    fake.add_github_token("gho_ratelimited", github_user(7004))
    fake.fail("/github/", 429)
    try:
        d = await authz.bearer("gho_ratelimited")
    finally:
        fake.recover()
    assert d.status == 503 and "retry-after" in d.headers


async def test_github_org_allow_list_admits_members_and_refuses_others_with_403(fake: FakeProviders) -> None:
    client = await serve(make_settings(fake, github_allowed_orgs=["Acme-Labs"]))
    try:
        fake.add_github_token("gho_member", github_user(7005, orgs=["acme-labs", "other"]))
        fake.add_github_token("gho_outsider", github_user(7006, orgs=["other"]))
        assert (await client.bearer("gho_member")).allowed
        d = await client.bearer("gho_outsider")
        assert (d.status, d.body["error"]) == (403, "access_denied")
    finally:
        await client.close()


async def test_any_github_token_needs_explicit_opt_in(fake: FakeProviders) -> None:
    fake.add_github_token("ghp_anytoken", github_user(7007, app=False))
    client = await serve(make_settings(fake, github_client_id=None, github_client_secret=None, github_allow_any_token=True))
    try:
        assert (await client.bearer("ghp_anytoken")).allowed
    finally:
        await client.close()
    with pytest.raises(ValueError, match="GITHUB_ALLOW_ANY_TOKEN"):
        await serve(make_settings(fake, github_client_id=None, github_client_secret=None))


async def test_github_tokens_are_refused_when_github_is_disabled(fake: FakeProviders) -> None:
    client = await serve(make_settings(fake, github_enabled=False))
    try:
        d = await client.bearer("gho_whatever")
        assert d.status == 401 and "not enabled" in d.body["error_description"]
    finally:
        await client.close()
