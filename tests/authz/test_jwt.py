"""JWT providers: every happy path, and the bad-credential battery (RFC 8725)."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import pytest

from fakes import FakeProviders, RequestTrap, SigningKey
from mcp_pa.core import contract
from tests.authz.conftest import AUTH0_AUDIENCE, GOOGLE_CLIENT, OIDC_AUDIENCE, AuthzClient, issuer
from tests.support.forgeries import ATTACKER, FORGERIES, UNKNOWN_KID, Forgery, Issuers, auth0_claims

# ---- happy paths ---------------------------------------------------------------------------

async def test_google_id_token_is_allowed_with_verified_email_and_domain_tenant(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "google").mint(GOOGLE_CLIENT, sub="1098", email="ann@example.com", email_verified=True, name="Ann Ö", hd="example.com")
    d = await authz.bearer(token)
    assert d.allowed
    assert d.headers[contract.HEADER_USER_ID] == "google:1098"
    assert d.headers[contract.HEADER_PROVIDER] == "google"
    assert d.headers[contract.HEADER_EMAIL] == "ann@example.com"
    assert d.headers[contract.HEADER_TENANT_ID] == "example_com"
    assert d.headers[contract.HEADER_PERMISSIONS] == "read,write"
    assert d.headers[contract.HEADER_NAME] == "Ann%20%C3%96"


async def test_google_id_token_with_short_issuer_form_is_allowed(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "google").mint(GOOGLE_CLIENT, sub="1099", iss="accounts.google.com")
    assert (await authz.bearer(token)).allowed


async def test_auth0_access_token_is_allowed_with_namespaced_email_and_scopes(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "auth0").mint(
        [AUTH0_AUDIENCE, "https://tenant.auth0.example/userinfo"],
        sub="auth0|abc",
        permissions=["mcp:read", "mcp:write", "mcp:admin"],  # assigned by RBAC: the grant
        scope="openid mcp:read mcp:admin",  # requested: narrows the grant to these
        **{"https://mcp.example.com/email": "Eve@Corp.example", "https://mcp.example.com/email_verified": True},
    )
    d = await authz.bearer(token)
    assert d.allowed
    assert d.headers[contract.HEADER_USER_ID] == "auth0:auth0|abc"
    assert d.headers[contract.HEADER_PERMISSIONS] == "admin,read"
    assert d.headers[contract.HEADER_EMAIL] == "Eve@Corp.example"
    assert d.headers[contract.HEADER_TENANT_ID] == "corp_example"


async def test_auth0_token_without_mcp_scopes_gets_default_permissions(fake: FakeProviders, authz: AuthzClient) -> None:
    d = await authz.bearer(issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|plain", scope="openid profile"))
    assert d.allowed and d.headers[contract.HEADER_PERMISSIONS] == "read,write"


async def test_oidc_es256_access_token_is_allowed_through_discovery(fake: FakeProviders, authz: AuthzClient) -> None:
    oidc = issuer(fake, "oidc")
    d = await authz.bearer(oidc.mint(OIDC_AUDIENCE, sub="kc-1", email="dev@startup.example", email_verified=True, typ="Bearer"))
    assert d.allowed
    assert d.headers[contract.HEADER_USER_ID] == "oidc-corp:kc-1"
    assert d.headers[contract.HEADER_PROVIDER] == "oidc-corp"
    assert fake.count("/oidc/.well-known/openid-configuration") == 1


async def test_unverified_email_never_reaches_the_app(fake: FakeProviders, authz: AuthzClient) -> None:
    d = await authz.bearer(issuer(fake, "google").mint(GOOGLE_CLIENT, sub="u-unverified", email="x@bank.example", email_verified=False))
    assert d.allowed
    assert contract.HEADER_EMAIL not in d.headers and contract.HEADER_EMAIL in d.removed
    assert d.headers[contract.HEADER_TENANT_ID].startswith("u___")


# ---- leeway: just inside is accepted --------------------------------------------------------

@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(lambda now: {"exp": now - 30}, id="exp-30s-ago"),
        pytest.param(lambda now: {"nbf": now + 30}, id="nbf-in-30s"),
        pytest.param(lambda now: {"iat": now + 30}, id="iat-in-30s"),
    ],
)
async def test_time_claims_just_inside_the_60s_leeway_are_accepted(fake: FakeProviders, authz: AuthzClient, claims: Callable[[int], dict]) -> None:
    now = int(time.time())
    token = issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub=f"auth0|leeway-{now}-{sorted(claims(now))[0]}", **claims(now))
    assert (await authz.bearer(token)).allowed


# ---- the bad-credential battery ---------------------------------------------------------------

@pytest.fixture(scope="module")
def trap() -> Iterator[RequestTrap]:
    listener = RequestTrap()
    yield listener
    listener.close()


@pytest.fixture
def issuers(fake: FakeProviders, trap: RequestTrap) -> Issuers:
    return Issuers(
        issuer(fake, "google"), GOOGLE_CLIENT, issuer(fake, "auth0"), AUTH0_AUDIENCE, issuer(fake, "oidc"), OIDC_AUDIENCE, trap.url
    )


@pytest.mark.parametrize("forgery", FORGERIES, ids=lambda f: f.id)
async def test_forged_token_is_rejected_with_401_naming_its_reason(authz: AuthzClient, issuers: Issuers, trap: RequestTrap, forgery: Forgery) -> None:
    d = await authz.bearer(forgery.make(issuers))
    assert (d.allowed, d.status) == (False, 401), d.body
    assert d.body and d.body["error"] == "invalid_token"
    assert forgery.reason in d.body["error_description"], d.body
    assert d.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert trap.hits == 0


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer  two-spaces", "Bearer tab\there", "Bearer t\u00f6ken"],
)
async def test_malformed_authorization_header_is_rejected_with_401(authz: AuthzClient, header: str) -> None:
    d = await authz.check({"authorization": header})
    assert d.status == 401 and d.body and d.body["error"] == "invalid_token"


@pytest.mark.parametrize("attack", ["jku", "x5u"])
async def test_jku_and_x5u_headers_are_never_fetched(authz: AuthzClient, issuers: Issuers, trap: RequestTrap, attack: str) -> None:
    token = ATTACKER.sign(auth0_claims(issuers), {attack: f"{trap.url}/keys.json", "kid": f"trap-{attack}"})
    d = await authz.bearer(token)
    assert d.status == 401 and d.body and d.body["error_description"] == UNKNOWN_KID
    assert trap.hits == 0


async def test_flood_of_unknown_kids_costs_at_most_one_jwks_fetch(fake: FakeProviders, authz: AuthzClient, issuers: Issuers) -> None:
    auth0 = issuer(fake, "auth0")
    assert (await authz.bearer(auth0.mint(AUTH0_AUDIENCE, sub="auth0|warm"))).allowed  # key set loaded
    before = fake.count("/auth0/jwks")
    attacker = SigningKey("RS256")
    for i in range(40):
        attacker.kid = f"flood-{i}"
        assert (await authz.bearer(attacker.sign(auth0_claims(issuers)))).status == 401
    assert fake.count("/auth0/jwks") - before <= 1
