"""Tenancy you can trust (issue 12), through the real gRPC service with real signed tokens.

Each test names the rule of docs/architecture.md "Tenants and permissions" it pins: only an
issuer the domain's owner controls places a user in a domain tenant or makes them its admin;
one normalisation before every comparison; scopes only narrow; time claims are JSON numbers;
the cache key includes the credential's kind; a failing issuer is asked once per cooldown.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest

from authz_service.config_files import parse_tenants
from authz_service.errors import AccessDenied
from authz_service.models import Principal
from authz_service.policy import permissions_for
from authz_service.tenancy import personal_tenant, resolve_tenant
from fakes import FakeIssuer, FakeProviders
from mcp_pa.core import contract
from tests.authz.conftest import AUTH0_AUDIENCE, GOOGLE_CLIENT, OIDC_AUDIENCE, AuthzClient, github_user, issuer, make_settings, serve

TENANTS = """\
domains:
  acme.example: acme
  kept.example: kept
  team.example: team
tenants:
  acme:
    admins: [boss@acme.example, "oidc-owned:root"]
  kept:
    issuers: [google, oidc-corp]
    admins: [boss@kept.example]
  team:
    issuers: [github]
    admins: [lead@team.example]
"""


@pytest.fixture(scope="module")
def owned(fake: FakeProviders) -> FakeIssuer:
    """An OIDC issuer configured as authoritative for acme.example."""
    return fake.issuers.get("/owned") or fake.issuer("/owned")


@pytest.fixture(scope="module")
def trusting(fake: FakeProviders) -> FakeIssuer:
    """An OIDC issuer whose scopes this server trusts (`"trust_scopes": true`)."""
    return fake.issuers.get("/trusting") or fake.issuer("/trusting")


@pytest.fixture(scope="module")
async def trust(fake: FakeProviders, owned: FakeIssuer, trusting: FakeIssuer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AuthzClient]:
    tenants = tmp_path_factory.mktemp("trust") / "tenants.yaml"
    tenants.write_text(TENANTS)
    providers = [
        {"name": "corp", "issuer": f"{fake.url}/oidc", "audience": OIDC_AUDIENCE},
        {"name": "owned", "issuer": owned.issuer, "audience": OIDC_AUDIENCE, "domains": ["ACME.example."]},
        {"name": "trusting", "issuer": trusting.issuer, "audience": OIDC_AUDIENCE, "trust_scopes": True},
    ]
    client = await serve(make_settings(fake, tenants_file=tenants, oidc_providers=providers))
    yield client
    await client.close()


def google(fake: FakeProviders, sub: str, email: str, **claims: object) -> str:
    return issuer(fake, "google").mint(GOOGLE_CLIENT, sub=sub, email=email, email_verified=True, **claims)


def tenant_and_permissions(d: object) -> tuple[str, str]:
    headers = d.headers  # type: ignore[attr-defined]
    return headers[contract.HEADER_TENANT_ID], headers[contract.HEADER_PERMISSIONS]


# ---- Google: domain tenancy only when hd equals the email's domain ---------------------------

async def test_rule_google_without_hd_is_personal_and_never_admin(fake: FakeProviders, trust: AuthzClient) -> None:
    d = await trust.bearer(google(fake, "g-consumer", "boss@acme.example"))
    assert tenant_and_permissions(d) == (personal_tenant("google:g-consumer"), "read,write")


async def test_rule_google_with_another_hd_is_personal(fake: FakeProviders, trust: AuthzClient) -> None:
    d = await trust.bearer(google(fake, "g-other", "boss@acme.example", hd="evil.example"))
    assert tenant_and_permissions(d) == (personal_tenant("google:g-other"), "read,write")


async def test_rule_google_with_matching_hd_joins_the_domain_tenant_and_its_admins(fake: FakeProviders, trust: AuthzClient) -> None:
    d = await trust.bearer(google(fake, "g-work", "Boss@ACME.example.", hd="acme.example"))
    assert tenant_and_permissions(d) == ("acme", "admin,read,write")
    d = await trust.bearer(google(fake, "g-derived", "ann@derived.example", hd="derived.example"))
    assert tenant_and_permissions(d) == ("derived_example", "read,write")


async def test_rule_google_access_token_uses_tokeninfo_hd(fake: FakeProviders, trust: AuthzClient) -> None:
    fake.add_google_token("ya29.trust-consumer", sub="ga-1", aud=GOOGLE_CLIENT, email="boss@acme.example")
    fake.add_google_token("ya29.trust-work", sub="ga-2", aud=GOOGLE_CLIENT, email="boss@acme.example", hd="acme.example")
    assert tenant_and_permissions(await trust.bearer("ya29.trust-consumer")) == (personal_tenant("google:ga-1"), "read,write")
    assert tenant_and_permissions(await trust.bearer("ya29.trust-work")) == ("acme", "admin,read,write")


async def test_rule_tenants_file_issuers_keeps_consumer_google_accounts(fake: FakeProviders, trust: AuthzClient) -> None:
    d = await trust.bearer(google(fake, "g-kept", "boss@kept.example"))
    assert tenant_and_permissions(d) == ("kept", "admin,read,write")


# ---- OIDC and Auth0: only their configured domains or tenants naming them --------------------

async def test_rule_oidc_issuer_without_domains_vouches_for_no_domain(fake: FakeProviders, trust: AuthzClient) -> None:
    token = issuer(fake, "oidc").mint(OIDC_AUDIENCE, sub="c-boss", email="boss@acme.example", email_verified=True, scope="openid")
    assert tenant_and_permissions(await trust.bearer(token)) == (personal_tenant("oidc-corp:c-boss"), "read,write")


async def test_rule_oidc_issuer_with_domains_places_and_makes_admins_there_only(fake: FakeProviders, owned: FakeIssuer, trust: AuthzClient) -> None:
    token = owned.mint(OIDC_AUDIENCE, sub="o-boss", email="boss@acme.example", email_verified=True)
    assert tenant_and_permissions(await trust.bearer(token)) == ("acme", "admin,read,write")
    token = owned.mint(OIDC_AUDIENCE, sub="o-out", email="boss@kept.example", email_verified=True)
    assert tenant_and_permissions(await trust.bearer(token)) == (personal_tenant("oidc-owned:o-out"), "read,write")


async def test_rule_tenants_file_issuers_admits_a_named_oidc_issuer(fake: FakeProviders, trust: AuthzClient) -> None:
    token = issuer(fake, "oidc").mint(OIDC_AUDIENCE, sub="c-kept", email="boss@kept.example", email_verified=True)
    assert tenant_and_permissions(await trust.bearer(token)) == ("kept", "admin,read,write")


async def test_rule_auth0_vouches_only_for_auth0_domains(fake: FakeProviders, trust: AuthzClient) -> None:
    auth0 = issuer(fake, "auth0")
    inside = auth0.mint(AUTH0_AUDIENCE, sub="auth0|in", email="dev@corp.example", email_verified=True)
    outside = auth0.mint(AUTH0_AUDIENCE, sub="auth0|out", email="boss@acme.example", email_verified=True)
    assert tenant_and_permissions(await trust.bearer(inside)) == ("corp_example", "read,write")
    assert tenant_and_permissions(await trust.bearer(outside)) == (personal_tenant("auth0:auth0|out"), "read,write")


# ---- GitHub: only where a tenant's issuers names github ------------------------------------

async def test_rule_github_email_counts_only_for_tenants_naming_github(fake: FakeProviders, trust: AuthzClient) -> None:
    fake.add_github_token("gho_trust_team", github_user(9101, email="lead@team.example"))
    fake.add_github_token("gho_trust_acme", github_user(9102, email="boss@acme.example"))
    assert tenant_and_permissions(await trust.bearer("gho_trust_team")) == ("team", "admin,read,write")
    assert tenant_and_permissions(await trust.bearer("gho_trust_acme")) == (personal_tenant("github:9102"), "read,write")


# ---- permissions: the base from trusted sources, scopes only narrow -------------------------

async def test_rule_scopes_only_narrow_asking_for_mcp_admin_grants_nothing(fake: FakeProviders, owned: FakeIssuer, trust: AuthzClient) -> None:
    everything = "openid " + " ".join(contract.SCOPES)  # what the SDK client asks for from the PRM
    token = owned.mint(OIDC_AUDIENCE, sub="o-dev", email="dev@acme.example", email_verified=True, scope=everything)
    assert tenant_and_permissions(await trust.bearer(token)) == ("acme", "read,write")


async def test_rule_scopes_narrow_an_admin_to_read_only(fake: FakeProviders, owned: FakeIssuer, trust: AuthzClient) -> None:
    member = {"email": "root@acme.example", "email_verified": True}  # listed as admin by user id
    token = owned.mint(OIDC_AUDIENCE, sub="root", scope="openid mcp:read", **member)
    assert tenant_and_permissions(await trust.bearer(token)) == ("acme", "read")
    token = owned.mint(OIDC_AUDIENCE, sub="root", scope="openid", **member)  # no mcp:* scope: the whole base
    assert tenant_and_permissions(await trust.bearer(token)) == ("acme", "admin,read,write")


async def test_rule_trust_scopes_lets_the_issuer_grant_admin(trusting: FakeIssuer, trust: AuthzClient) -> None:
    token = trusting.mint(OIDC_AUDIENCE, sub="t-1", scope="openid mcp:read mcp:admin")
    assert tenant_and_permissions(await trust.bearer(token))[1] == "admin,read"


async def test_rule_auth0_rbac_permissions_are_the_grant_and_scope_narrows_it(fake: FakeProviders, trust: AuthzClient) -> None:
    auth0 = issuer(fake, "auth0")
    granted = auth0.mint(AUTH0_AUDIENCE, sub="auth0|rbac", permissions=["mcp:read", "mcp:admin"])
    assert tenant_and_permissions(await trust.bearer(granted))[1] == "admin,read"
    asked = auth0.mint(AUTH0_AUDIENCE, sub="auth0|asks", permissions=["mcp:read"], scope="openid mcp:read mcp:write mcp:admin")
    assert tenant_and_permissions(await trust.bearer(asked))[1] == "read"


async def test_rule_scopes_that_leave_no_permission_are_refused_with_insufficient_scope(owned: FakeIssuer, trust: AuthzClient) -> None:
    d = await trust.bearer(owned.mint(OIDC_AUDIENCE, sub="o-none", scope="openid mcp:unknown"))
    assert (d.status, d.body["error"]) == (403, "insufficient_scope")


# ---- strict claims -------------------------------------------------------------------------

@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["numeric-string", True, False, None], ids=["numeric-string", "true", "false", "null"])
async def test_rule_time_claims_must_be_json_numbers(fake: FakeProviders, authz: AuthzClient, claim: str, value: object) -> None:
    auth0 = issuer(fake, "auth0")
    base = auth0.claims(AUTH0_AUDIENCE, sub=f"auth0|time-{claim}-{value}")
    base[claim] = str(base.get(claim, base["iat"])) if value == "numeric-string" else value
    d = await authz.bearer(auth0.key.sign(base))
    assert (d.status, d.body["error"]) == (401, "invalid_token")
    assert f"{claim} claim must be a JSON number" in d.body["error_description"]


async def test_rule_cache_key_includes_the_credential_kind(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|kind")
    assert (await authz.check({"x-api-key": token})).status == 401  # a JWT is no API key
    assert (await authz.bearer(token)).allowed  # judged afresh, not the cached refusal


@pytest.mark.parametrize(
    ("claims", "what"),
    [({"sub": "line\nbreak"}, "subject"), ({"name": "Ann\x1b[31m"}, "name"), ({"email": "a\r@corp.example", "email_verified": True}, "email")],
    ids=["subject", "name", "email"],
)
async def test_rule_control_characters_are_refused_at_authz(fake: FakeProviders, authz: AuthzClient, claims: dict[str, object], what: str) -> None:
    d = await authz.bearer(issuer(fake, "auth0").mint(AUTH0_AUDIENCE, **{"sub": "auth0|ctl", **claims}))
    assert (d.status, d.body["error"]) == (401, "invalid_token")
    assert what in d.body["error_description"]


async def test_rule_non_ascii_identity_values_are_percent_encoded(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|jöhn", name="Jöhn 100%", email="jöhn@corp.example", email_verified=True)
    d = await authz.bearer(token)
    assert d.headers[contract.HEADER_USER_ID] == "auth0:auth0|j%C3%B6hn"
    assert d.headers[contract.HEADER_EMAIL] == "j%C3%B6hn@corp.example"
    identity = contract.Identity.from_headers(d.headers)
    assert (identity.user_id, identity.email, identity.name) == ("auth0:auth0|jöhn", "jöhn@corp.example", "Jöhn 100%")


# ---- a failing issuer is asked once per cooldown, also before its first success ---------------

async def test_rule_issuer_down_before_first_fetch_is_asked_once_per_cooldown(fake: FakeProviders) -> None:
    down = fake.issuer("/down-cold")
    client = await serve(make_settings(fake, oidc_providers=[{"name": "down", "issuer": down.issuer, "audience": OIDC_AUDIENCE}]))
    fake.fail("/down-cold", 503)
    try:
        tokens = [down.mint(OIDC_AUDIENCE, sub=f"flood-{i}") for i in range(200)]
        first = await asyncio.gather(*(client.bearer(t) for t in tokens[:100]))
        second = await asyncio.gather(*(client.bearer(t) for t in tokens[100:]))  # still inside the 30 s cooldown
        assert {d.status for d in first + second} == {503}
        assert fake.count("/down-cold") <= 2, fake.count("/down-cold")
    finally:
        fake.recover()
        await client.close()


# ---- one normalisation before every comparison (unit level) ---------------------------------

def principal(email: str, sub: str = "s1", vouched: str | None = None) -> Principal:
    return Principal(provider="google", subject=sub, email=email, email_verified=True, vouched_domains=frozenset({vouched} if vouched else ()))


def test_rule_trailing_dot_and_case_do_not_skip_denied_domains() -> None:
    config = parse_tenants("denied_domains: [Spam.Example.]\n")
    for email in ("x@spam.example.", "x@SPAM.example", "x@spam.example..", "x@ｓｐａｍ.example"):
        with pytest.raises(AccessDenied, match="spam.example"):
            resolve_tenant(principal(email), config)


def test_rule_trailing_dot_does_not_skip_personal_domains() -> None:
    config = parse_tenants("{}")
    one, two = resolve_tenant(principal("a@gmail.com.", "1", "gmail.com"), config), resolve_tenant(principal("b@gmail.com.", "2", "gmail.com"), config)
    assert one == personal_tenant("google:1") and two == personal_tenant("google:2")


def test_rule_trailing_dot_does_not_skip_the_domain_map_or_admins() -> None:
    config = parse_tenants("domains:\n  Acme.Example.: acme\ntenants:\n  acme:\n    admins: [Boss@ACME.example.]\n")
    boss = principal("boss@acme.example.", vouched="acme.example")
    assert resolve_tenant(boss, config) == "acme"
    assert "admin" in permissions_for(boss, "acme", config)


def test_rule_idn_domains_compare_in_one_form() -> None:
    config = parse_tenants("domains:\n  xn--bcher-kva.example: books\ntenants:\n  books:\n    issuers: [google]\n")
    assert resolve_tenant(principal("a@Bücher.example."), config) == "books"


def test_tenants_file_refuses_an_unknown_issuer_name() -> None:
    with pytest.raises(ValueError, match=r"tenants\.acme\.issuers\[0\]: 'okta' is not a provider name"):
        parse_tenants("tenants:\n  acme:\n    issuers: [okta]\n")


def test_invalid_oidc_domain_is_refused_at_start(fake: FakeProviders, tmp_path: Path) -> None:
    from authz_service.providers.oidc import OIDCProvider
    from mcp_pa.core.settings import OIDCProvider as OIDCSettings

    config = OIDCSettings(name="bad", issuer=f"{fake.url}/oidc", audience="a", domains=["not a domain"])
    with pytest.raises(ValueError, match=r"MCP_HTTP_OIDC_PROVIDERS\[bad\]\.domains: 'not a domain'"):
        OIDCProvider(config, None, 30.0)  # type: ignore[arg-type]
