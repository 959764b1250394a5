"""JWT providers: every happy path, and the bad-credential battery (RFC 8725)."""

from __future__ import annotations

import time
from typing import Callable

import jwt
import pytest

from mcp_pa.core import contract
from tests.authz.conftest import AUTH0_AUDIENCE, GOOGLE_CLIENT, OIDC_AUDIENCE, AuthzClient, issuer
from tests.fakes import FakeProviders, RequestTrap, SigningKey, b64url, forge

# ---- happy paths ---------------------------------------------------------------------------

async def test_google_id_token_is_allowed_with_verified_email_and_domain_tenant(fake: FakeProviders, authz: AuthzClient) -> None:
    token = issuer(fake, "google").mint(GOOGLE_CLIENT, sub="1098", email="ann@example.com", email_verified=True, name="Ann Ö")
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
        permissions=["mcp:read", "mcp:admin"],
        scope="openid mcp:write",
        **{"https://mcp.example.com/email": "Eve@Corp.example", "https://mcp.example.com/email_verified": True},
    )
    d = await authz.bearer(token)
    assert d.allowed
    assert d.headers[contract.HEADER_USER_ID] == "auth0:auth0|abc"
    assert d.headers[contract.HEADER_PERMISSIONS] == "admin,read,write"
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

def _auth0_claims(fake: FakeProviders, **extra) -> dict:
    return issuer(fake, "auth0").claims(AUTH0_AUDIENCE, sub="auth0|victim", **extra)


def _signature_of(token: str) -> str:
    return token.rsplit(".", 1)[1]


def _attacker_signed(fake: FakeProviders, headers: dict, **claims) -> str:
    attacker = SigningKey("RS256", kid="attacker")
    return attacker.sign(_auth0_claims(fake, **claims), headers)


def _hs256_with_public_key(fake: FakeProviders) -> str:
    # Key confusion: sign with HMAC using the issuer's public key PEM as the secret.
    key = issuer(fake, "auth0").key
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{b64url(header)}.{b64url(_auth0_claims(fake))}".encode()
    mac = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256)
    return f"{signing_input.decode()}.{b64url(mac.sign(signing_input, key.public_pem()))}"


def _none(spelling: str) -> Callable[[FakeProviders], str]:
    return lambda fake: forge({"alg": spelling, "typ": "JWT"}, _auth0_claims(fake), b"sig")


NOT_UTF8 = bytes([0xFF, 0xFE, 0xFA])


def _now() -> int:
    return int(time.time())


BAD_TOKENS: dict[str, Callable[[FakeProviders], str]] = {
    "alg-none": _none("none"),
    "alg-None": _none("None"),
    "alg-NONE": _none("NONE"),
    "alg-nOnE": _none("nOnE"),
    "alg-none-empty-signature": lambda f: forge({"alg": "none"}, _auth0_claims(f)),
    "null-signature": lambda f: forge({"alg": "RS256", "kid": issuer(f, "auth0").key.kid}, _auth0_claims(f)),
    "truncated-signature": lambda f: (lambda t: t[:-10])(issuer(f, "auth0").mint(AUTH0_AUDIENCE)),
    "signature-of-another-token": lambda f: (
        issuer(f, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|victim").rsplit(".", 1)[0]
        + "." + _signature_of(issuer(f, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|other"))
    ),
    "hs256-signed-with-rsa-public-key": _hs256_with_public_key,
    "embedded-jwk-header": lambda f: (
        lambda k: k.sign(_auth0_claims(f), {"jwk": k.public_jwk()})
    )(SigningKey("RS256", kid=issuer(f, "auth0").key.kid)),
    "attacker-key-with-real-kid": lambda f: SigningKey("RS256", kid=issuer(f, "auth0").key.kid).sign(_auth0_claims(f)),
    "kid-path-traversal": lambda f: _attacker_signed(f, {"kid": "../../../../dev/null"}),
    "kid-sql-injection": lambda f: _attacker_signed(f, {"kid": "' OR '1'='1"}),
    "kid-oversized": lambda f: _attacker_signed(f, {"kid": "k" * 300}),
    "kid-not-a-string": lambda f: forge({"alg": "RS256", "kid": {"$ne": None}}, _auth0_claims(f), b"x"),
    "unknown-crit-header": lambda f: issuer(f, "auth0").key.sign(_auth0_claims(f), {"crit": ["exp"], "exp": 1}),
    "expired-beyond-leeway": lambda f: issuer(f, "auth0").mint(AUTH0_AUDIENCE, exp=_now() - 61),
    "nbf-beyond-leeway": lambda f: issuer(f, "auth0").mint(AUTH0_AUDIENCE, nbf=_now() + 90),
    "iat-beyond-leeway": lambda f: issuer(f, "auth0").mint(AUTH0_AUDIENCE, iat=_now() + 120),
    "exp-not-a-number": lambda f: issuer(f, "auth0").mint(AUTH0_AUDIENCE, exp="never"),
    "missing-sub": lambda f: issuer(f, "auth0").key.sign({k: v for k, v in _auth0_claims(f).items() if k != "sub"}),
    "missing-exp": lambda f: issuer(f, "auth0").key.sign({k: v for k, v in _auth0_claims(f).items() if k != "exp"}),
    "missing-iss": lambda f: issuer(f, "auth0").key.sign({k: v for k, v in _auth0_claims(f).items() if k != "iss"}),
    "google-lookalike-issuer": lambda f: issuer(f, "google").mint(GOOGLE_CLIENT, iss="https://accounts.google.com.evil"),
    "auth0-issuer-without-trailing-slash": lambda f: issuer(f, "auth0").mint(AUTH0_AUDIENCE, iss=issuer(f, "auth0").issuer.rstrip("/")),
    "auth0-wrong-audience": lambda f: issuer(f, "auth0").mint("https://other.example/api"),
    "google-id-token-for-another-client": lambda f: issuer(f, "google").mint("someone-else.apps.googleusercontent.com"),
    "auth0-id-token-as-access-token": lambda f: issuer(f, "auth0").mint("auth0-client-id", nonce="n-0S6_WzA2Mj"),
    "id-token-claims-with-right-audience": lambda f: issuer(f, "auth0").mint(AUTH0_AUDIENCE, nonce="n", at_hash="x"),
    "access-token-type-as-google-id-token": lambda f: issuer(f, "google").mint(GOOGLE_CLIENT, headers={"typ": "at+jwt"}),
    "id-token-type-at-auth0": lambda f: issuer(f, "auth0").mint(AUTH0_AUDIENCE, headers={"typ": "id_token+jwt"}),
    "rs256-header-on-es256-issuer": lambda f: SigningKey("RS256", kid=issuer(f, "oidc").key.kid).sign(issuer(f, "oidc").claims(OIDC_AUDIENCE)),
    "es256-header-on-rsa-issuer": lambda f: SigningKey("ES256", kid=issuer(f, "auth0").key.kid).sign(_auth0_claims(f)),
    "jwe-five-segments": lambda f: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",
    "two-segments": lambda f: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0",
    "bad-base64-header": lambda f: "e!!!.eyJzdWIiOiIxIn0.c2ln",
    "non-utf8-payload": lambda f: ".".join([b64url({"alg": "RS256"}), b64url(NOT_UTF8), "c2ln"]),
    "non-json-header": lambda f: f"{b64url('not json')}.{b64url(_auth0_claims(f))}.c2ln",
    "header-is-a-json-array": lambda f: f"{b64url('[1,2]')}.{b64url(_auth0_claims(f))}.c2ln",
    "oversized-token": lambda f: issuer(f, "auth0").mint(AUTH0_AUDIENCE, padding="x" * 9000),
    "unknown-token-format": lambda f: "just-some-opaque-string",
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_credential_is_rejected_with_401_invalid_token(fake: FakeProviders, authz: AuthzClient, case: str) -> None:
    d = await authz.bearer(BAD_TOKENS[case](fake))
    assert (d.allowed, d.status) == (False, 401), d.body
    assert d.body and d.body["error"] == "invalid_token"
    assert d.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer  two-spaces", "Bearer tab\there", "Bearer t\u00f6ken"],
)
async def test_malformed_authorization_header_is_rejected_with_401(authz: AuthzClient, header: str) -> None:
    d = await authz.check({"authorization": header})
    assert d.status == 401 and d.body and d.body["error"] == "invalid_token"


@pytest.mark.parametrize("attack", ["jku", "x5u"])
async def test_jku_and_x5u_headers_are_never_fetched(fake: FakeProviders, authz: AuthzClient, attack: str) -> None:
    trap = RequestTrap()
    try:
        token = _attacker_signed(fake, {attack: f"{trap.url}/keys.json", "kid": f"trap-{attack}"})
        d = await authz.bearer(token)
        assert d.status == 401
        assert trap.hits == 0
    finally:
        trap.close()


async def test_flood_of_unknown_kids_costs_at_most_one_jwks_fetch(fake: FakeProviders, authz: AuthzClient) -> None:
    auth0 = issuer(fake, "auth0")
    assert (await authz.bearer(auth0.mint(AUTH0_AUDIENCE, sub="auth0|warm"))).allowed  # key set loaded
    before = fake.count("/auth0/jwks")
    attacker = SigningKey("RS256")
    for i in range(40):
        attacker.kid = f"flood-{i}"
        assert (await authz.bearer(attacker.sign(_auth0_claims(fake)))).status == 401
    assert fake.count("/auth0/jwks") - before <= 1
