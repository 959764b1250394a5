"""JWT verification by the rules of RFC 8725, shared by the Google, Auth0 and OIDC providers.

- Exactly three base64url segments; a five-segment JWE is refused; the signature is not empty.
- `alg` must be an asymmetric algorithm the key itself allows: never `none`, never HS*.
- The key comes only from the issuer's configured JWKS: `jku`, `x5u`, `jwk` and `x5c` headers
  are never read, let alone fetched.
- Any `crit` header is refused (we implement no JWS extensions).
- `iss` exact, `aud`, `exp`/`nbf`/`iat` with 60 s leeway; `sub`, `exp`, `iss` are required;
  time claims are JSON numbers (RFC 7519 NumericDate): a string or a boolean is refused.
- ID tokens and access tokens are not interchangeable: `typ: at+jwt` is refused where an ID
  token is expected, and a token that carries ID-token claims (`nonce`, `at_hash`) or an ID
  `typ` is refused where an access token is expected.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any, Literal

import jwt

from authz_service.errors import InvalidToken
from authz_service.providers.jwks import ASYMMETRIC_ALGORITHMS, JWKS
from mcp_pa.core.contract import PERMISSIONS, SCOPE_PREFIX

LEEWAY_SECONDS = 60
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]*$")
ACCESS_TOKEN_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
ID_TOKEN_TYPES = frozenset({"jwt"})
ID_TOKEN_ONLY_CLAIMS = ("nonce", "at_hash", "c_hash")
TokenKind = Literal["id", "access"]
TIME_CLAIMS = ("exp", "nbf", "iat")
MAX_NUMERIC_DATE = 253402300799  # 9999-12-31T23:59:59Z: later is no date a datetime can hold


def _segment_json(segment: str, what: str) -> dict[str, Any]:
    if not _SEGMENT.fullmatch(segment):
        raise InvalidToken(f"the token's {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken(f"the token's {what} is not valid base64url JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"the token's {what} is not a JSON object")
    return value


def split(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Unverified (header, payload) of a compact JWS; raises InvalidToken when malformed."""
    segments = token.split(".")
    if len(segments) == 5:
        raise InvalidToken("encrypted tokens (JWE) are not accepted")
    if len(segments) != 3:
        raise InvalidToken("a JWT has three dot-separated parts")
    header = _segment_json(segments[0], "header")
    payload = _segment_json(segments[1], "payload")
    if not segments[2] or not _SEGMENT.fullmatch(segments[2]):
        raise InvalidToken("the token's signature is missing or not base64url")
    return header, payload


def unverified_issuer(token: str) -> str:
    """The `iss` claim, read only to choose a provider; the provider verifies it for real."""
    _, payload = split(token)
    issuer = payload.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidToken("the token has no issuer (iss)")
    return issuer


def _check_header(header: dict[str, Any], kind: TokenKind) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
        raise InvalidToken("the token's signing algorithm is not allowed")
    if "crit" in header:
        raise InvalidToken("the token has critical header parameters this server does not implement")
    typ = header.get("typ")
    if typ is not None:
        allowed = ACCESS_TOKEN_TYPES if kind == "access" else ID_TOKEN_TYPES
        if not isinstance(typ, str) or typ.lower() not in allowed:
            raise InvalidToken(f"a token of type {str(typ)[:40]!r} is not accepted here ({kind} token expected)")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
        raise InvalidToken("the token's key id (kid) is malformed")
    return alg, kid


def _check_time_claims(payload: dict[str, Any]) -> None:
    # RFC 7519 §2 NumericDate is a JSON number; PyJWT would accept "1700000000" and True (== 1).
    for name in TIME_CLAIMS:
        if name not in payload:
            continue
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidToken(f"the token's {name} claim must be a JSON number (seconds since the epoch)")
        if not 0 <= value <= MAX_NUMERIC_DATE:
            raise InvalidToken(f"the token's {name} claim is out of range")


class JWTVerifier:
    """Verifies one issuer's tokens against its JWKS."""

    def __init__(self, jwks: JWKS, issuers: tuple[str, ...], audiences: tuple[str, ...], kind: TokenKind) -> None:
        if not audiences:
            raise ValueError(f"an audience is required to accept tokens from {issuers[0]}")
        self.jwks = jwks
        self.issuers = issuers
        self.audiences = list(audiences)
        self.kind = kind

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims; raises InvalidToken (or ProviderUnavailable from the JWKS)."""
        header, payload = split(token)
        alg, kid = _check_header(header, self.kind)
        if self.kind == "access" and any(c in payload for c in ID_TOKEN_ONLY_CLAIMS):
            raise InvalidToken("an ID token is not an access token")
        _check_time_claims(payload)
        key = await self.jwks.key(kid)
        if alg not in key.algorithms:
            raise InvalidToken("the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audiences,
                issuer=self.issuers,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("the token is not valid yet (nbf/iat in the future)") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("the token was issued for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("the token's issuer is not accepted") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token lacks the required claim {exc.claim}") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("the token's signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("the token is malformed") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise InvalidToken("the token's subject (sub) is missing or malformed")
        return claims


def claim_bool(value: Any) -> bool:
    """email_verified as providers send it: a JSON boolean or the string "true"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _mcp_permissions(claims: dict[str, Any], names: tuple[str, ...]) -> frozenset[str] | None:
    """Permissions named by `mcp:*` entries of the given claims, or None when they name none.

    None means "the token says nothing about this server"; an `mcp:*` entry this server does
    not know counts as saying something (and grants nothing).
    """
    values: list[str] = []
    for name in names:
        raw = claims.get(name)
        if isinstance(raw, str):
            values += raw.split()
        elif isinstance(raw, list):
            values += [v for v in raw if isinstance(v, str)]
    mcp = [v[len(SCOPE_PREFIX):] for v in values if v.startswith(SCOPE_PREFIX)]
    return frozenset(mcp) & frozenset(PERMISSIONS) if mcp else None


def assigned_permissions(claims: dict[str, Any]) -> frozenset[str] | None:
    """Administrator-assigned permissions: Auth0 RBAC's `permissions` claim."""
    return _mcp_permissions(claims, ("permissions",))


def requested_scopes(claims: dict[str, Any]) -> frozenset[str] | None:
    """What the client asked for (`scope`/`scp`): it narrows the grant, never widens it."""
    return _mcp_permissions(claims, ("scope", "scp"))


def all_token_permissions(claims: dict[str, Any]) -> frozenset[str] | None:
    """Every `mcp:*` entry of the token: the grant of a provider configured with trust_scopes."""
    return _mcp_permissions(claims, ("permissions", "scope", "scp"))


def email_claims(claims: dict[str, Any]) -> tuple[str | None, bool]:
    """(email, verified) from plain or namespaced claims (`https://…/email`, as Auth0 Actions add)."""
    email, verified = claims.get("email"), claims.get("email_verified")
    if email is None:
        for key, value in claims.items():
            if key.startswith("https://") and key.endswith("/email"):
                email = value
                verified = claims.get(f"{key}_verified")
                break
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        return None, False
    return email, claim_bool(verified)
