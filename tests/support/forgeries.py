"""One table of forged and malformed JWTs, each with the reason the service must give.

Both levels run it: tests/authz/test_jwt.py asks the gRPC service directly, and
tests/security/test_attacks.py sends the same tokens through Envoy. A case passes only when the
refusal names its reason (`error_description`), so removing one check (the kid length, the
`crit` refusal…) fails its row even when another check would still refuse the token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import jwt

from fakes import FakeIssuer, SigningKey, b64url, forge


@dataclass(frozen=True)
class Issuers:
    """The fake issuers a service under test trusts, the audience each expects, and a trap URL."""

    google: FakeIssuer
    google_client: str
    auth0: FakeIssuer
    auth0_audience: str
    oidc: FakeIssuer  # an ES256 issuer
    oidc_audience: str
    trap_url: str  # a listener that no fetch may ever reach (jku, x5u)


@dataclass(frozen=True)
class Forgery:
    """A bad token and the words its refusal must contain."""

    id: str
    make: Callable[[Issuers], str]
    reason: str


ATTACKER = SigningKey("RS256", kid="attacker")
NOT_UTF8 = bytes([0xFF, 0xFE, 0xFA])
PSYCHIC_SIGNATURE = "MAYCAQACAQA"  # DER ECDSA (r=0, s=0): CVE-2022-21449

ALG_NOT_ALLOWED = "the token's signing algorithm is not allowed"
BAD_SIGNATURE = "the token's signature is invalid"
NO_SIGNATURE = "the token's signature is missing or not base64url"
UNKNOWN_KID = "the token was signed with an unknown key (kid)"
BAD_KID = "the token's key id (kid) is malformed"
ISSUER_REFUSED = "the token's issuer is not accepted by this server"
OTHER_AUDIENCE = "the token was issued for another audience"
NOT_A_TOKEN = "the token is not a JWT, a Google or GitHub token, or a known API key"
WRONG_KEY_ALG = "the token's algorithm does not match its key"
NOT_ACCESS_TOKEN = "an ID token is not an access token"
NOT_YET_VALID = "the token is not valid yet"


def _now() -> int:
    return int(time.time())


def auth0_claims(i: Issuers, **extra: Any) -> dict[str, Any]:
    return i.auth0.claims(i.auth0_audience, sub="auth0|victim", **extra)


def google_claims(i: Issuers, **extra: Any) -> dict[str, Any]:
    return i.google.claims(i.google_client, sub="g-victim", email="gina@gmail.com", email_verified=True, **extra)


def _without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


def _hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url(header)}.{b64url(payload)}".encode()
    mac = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256)
    return f"{signing_input.decode()}.{b64url(mac.sign(signing_input, secret))}"


def _none(spelling: str) -> Callable[[Issuers], str]:
    return lambda i: forge({"alg": spelling, "typ": "JWT"}, auth0_claims(i), b"sig")


def _spliced(i: Issuers) -> str:
    victim = i.auth0.mint(i.auth0_audience, sub="auth0|victim")
    other = i.auth0.mint(i.auth0_audience, sub="auth0|other")
    return victim.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]


def _hs256_public_key(issuer: Callable[[Issuers], FakeIssuer], claims: Callable[[Issuers], dict[str, Any]]) -> Callable[[Issuers], str]:
    # Key confusion: HMAC with the issuer's public key PEM as the secret.
    return lambda i: _hs256({"alg": "HS256", "kid": issuer(i).key.kid}, claims(i), issuer(i).key.public_pem())


def _es256_forged(signature: bytes | str) -> Callable[[Issuers], str]:
    return lambda i: forge({"alg": "ES256", "kid": i.oidc.key.kid}, i.oidc.claims(i.oidc_audience), signature)


def _typ_refused(typ: str) -> str:
    return f"a token of type {typ!r} is not accepted here"


def _attacker(headers: dict[str, Any]) -> Callable[[Issuers], str]:
    return lambda i: ATTACKER.sign(auth0_claims(i), headers)


FORGERIES: list[Forgery] = [
    # -- algorithm
    Forgery("alg-none", _none("none"), ALG_NOT_ALLOWED),
    Forgery("alg-None", _none("None"), ALG_NOT_ALLOWED),
    Forgery("alg-NONE", _none("NONE"), ALG_NOT_ALLOWED),
    Forgery("alg-nOnE", _none("nOnE"), ALG_NOT_ALLOWED),
    Forgery("alg-none-google", lambda i: forge({"alg": "none", "kid": i.google.key.kid}, google_claims(i), b"sig"), ALG_NOT_ALLOWED),
    Forgery("alg-none-empty-signature", lambda i: forge({"alg": "none"}, auth0_claims(i)), NO_SIGNATURE),
    Forgery("hs256-signed-with-rsa-public-key", _hs256_public_key(lambda i: i.auth0, auth0_claims), ALG_NOT_ALLOWED),
    Forgery("hs256-google-with-rsa-public-key", _hs256_public_key(lambda i: i.google, google_claims), ALG_NOT_ALLOWED),
    Forgery("kid-path-traversal-hs256-empty-key", lambda i: _hs256({"alg": "HS256", "kid": "../../../../dev/null"}, google_claims(i), b""), ALG_NOT_ALLOWED),
    Forgery("kid-sql-injection-hs256", lambda i: _hs256({"alg": "HS256", "kid": "x' UNION SELECT 'k' --"}, google_claims(i), b"k"), ALG_NOT_ALLOWED),
    Forgery("rs256-header-on-es256-issuer", lambda i: SigningKey("RS256", kid=i.oidc.key.kid).sign(i.oidc.claims(i.oidc_audience)), WRONG_KEY_ALG),
    Forgery("es256-header-on-rsa-issuer", lambda i: SigningKey("ES256", kid=i.auth0.key.kid).sign(auth0_claims(i)), WRONG_KEY_ALG),
    # -- signature
    Forgery("null-signature", lambda i: forge({"alg": "RS256", "kid": i.auth0.key.kid}, auth0_claims(i)), NO_SIGNATURE),
    Forgery("truncated-signature", lambda i: i.auth0.mint(i.auth0_audience)[:-10], BAD_SIGNATURE),
    Forgery("signature-of-another-token", _spliced, BAD_SIGNATURE),
    Forgery("attacker-key-with-the-real-kid", lambda i: SigningKey("RS256", kid=i.auth0.key.kid).sign(auth0_claims(i)), BAD_SIGNATURE),
    Forgery("attacker-key-with-the-real-google-kid", lambda i: ATTACKER.sign(google_claims(i), {"kid": i.google.key.kid}), BAD_SIGNATURE),
    Forgery("psychic-es256-der-zero", _es256_forged(PSYCHIC_SIGNATURE), BAD_SIGNATURE),
    Forgery("psychic-es256-raw-zero", _es256_forged(b"\0" * 64), BAD_SIGNATURE),
    # -- where the key comes from: never from the token
    Forgery("embedded-jwk", lambda i: ATTACKER.sign(auth0_claims(i), {"jwk": ATTACKER.public_jwk()}), UNKNOWN_KID),
    Forgery("embedded-jwk-with-the-real-kid", lambda i: ATTACKER.sign(auth0_claims(i), {"kid": i.auth0.key.kid, "jwk": ATTACKER.public_jwk()}), BAD_SIGNATURE),
    Forgery("jku-to-the-trap", lambda i: ATTACKER.sign(auth0_claims(i), {"jku": f"{i.trap_url}/jwks"}), UNKNOWN_KID),
    Forgery("x5u-to-the-trap", lambda i: ATTACKER.sign(auth0_claims(i), {"x5u": f"{i.trap_url}/cert.pem"}), UNKNOWN_KID),
    Forgery("kid-path-traversal", _attacker({"kid": "../../../../dev/null"}), UNKNOWN_KID),
    Forgery("kid-sql-injection", _attacker({"kid": "' OR '1'='1"}), UNKNOWN_KID),
    Forgery("kid-oversized", _attacker({"kid": "k" * 300}), BAD_KID),
    Forgery("kid-not-a-string", lambda i: forge({"alg": "RS256", "kid": {"$ne": None}}, auth0_claims(i), b"x"), BAD_KID),
    Forgery("unknown-crit-header", lambda i: i.auth0.key.sign(auth0_claims(i), {"crit": ["exp"], "exp": 1}), "critical header parameters"),
    # -- time
    Forgery("expired-beyond-leeway", lambda i: i.auth0.mint(i.auth0_audience, exp=_now() - 61), "the token has expired"),
    Forgery("nbf-beyond-leeway", lambda i: i.auth0.mint(i.auth0_audience, nbf=_now() + 90), NOT_YET_VALID),
    Forgery("iat-beyond-leeway", lambda i: i.auth0.mint(i.auth0_audience, iat=_now() + 120), NOT_YET_VALID),
    Forgery("exp-not-a-number", lambda i: i.auth0.mint(i.auth0_audience, exp="never"), "the token's exp claim must be a JSON number"),
    # -- required claims
    Forgery("missing-sub", lambda i: i.auth0.key.sign(_without(auth0_claims(i), "sub")), "the token lacks the required claim sub"),
    Forgery("missing-exp", lambda i: i.auth0.key.sign(_without(auth0_claims(i), "exp")), "the token lacks the required claim exp"),
    Forgery("missing-iss", lambda i: i.auth0.key.sign(_without(auth0_claims(i), "iss")), "the token has no issuer (iss)"),
    # -- issuer and audience
    Forgery("google-lookalike-issuer", lambda i: i.google.mint(i.google_client, iss="https://accounts.google.com.evil"), ISSUER_REFUSED),
    Forgery("auth0-issuer-without-trailing-slash", lambda i: i.auth0.mint(i.auth0_audience, iss=i.auth0.issuer.rstrip("/")), ISSUER_REFUSED),
    Forgery("unknown-issuer", lambda i: ATTACKER.sign({**google_claims(i), "iss": "https://evil.example"}), ISSUER_REFUSED),
    Forgery("auth0-wrong-audience", lambda i: i.auth0.mint("https://other.example/api"), OTHER_AUDIENCE),
    Forgery("google-id-token-for-another-client", lambda i: i.google.mint("someone-else.apps.googleusercontent.com"), OTHER_AUDIENCE),
    Forgery("oidc-token-with-the-auth0-audience", lambda i: i.oidc.mint(i.auth0_audience, sub="o-x"), OTHER_AUDIENCE),
    Forgery("google-iss-signed-by-auth0-key", lambda i: i.auth0.key.sign(google_claims(i)), UNKNOWN_KID),
    # -- token kind
    Forgery("auth0-id-token-as-access-token", lambda i: i.auth0.mint("auth0-client-id", nonce="n-0S6_WzA2Mj"), NOT_ACCESS_TOKEN),
    Forgery("id-token-claims-with-right-audience", lambda i: i.auth0.mint(i.auth0_audience, nonce="n", at_hash="x"), NOT_ACCESS_TOKEN),
    Forgery("access-token-type-as-google-id-token", lambda i: i.google.mint(i.google_client, headers={"typ": "at+jwt"}), _typ_refused("at+jwt")),
    Forgery("id-token-type-at-auth0", lambda i: i.auth0.mint(i.auth0_audience, headers={"typ": "id_token+jwt"}), _typ_refused("id_token+jwt")),
    # -- shape
    Forgery("jwe-five-segments", lambda i: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", "encrypted tokens (JWE) are not accepted"),
    Forgery("two-segments", lambda i: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0", NOT_A_TOKEN),
    Forgery("bad-base64-header", lambda i: "e!!!.eyJzdWIiOiIxIn0.c2ln", "the token's header is not base64url"),
    Forgery("non-utf8-payload", lambda i: ".".join([b64url({"alg": "RS256"}), b64url(NOT_UTF8), "c2ln"]), "the token's payload is not valid base64url JSON"),
    Forgery("non-json-header", lambda i: f"{b64url('not json')}.{b64url(auth0_claims(i))}.c2ln", "the token's header is not valid base64url JSON"),
    Forgery("header-is-a-json-array", lambda i: f"{b64url('[1,2]')}.{b64url(auth0_claims(i))}.c2ln", "the token's header is not a JSON object"),
    Forgery("oversized-token", lambda i: i.auth0.mint(i.auth0_audience, padding="x" * 9000), "longer than 8192 bytes"),
    Forgery("unknown-token-format", lambda i: "just-some-opaque-string", NOT_A_TOKEN),
]
