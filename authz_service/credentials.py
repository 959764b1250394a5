"""Phase 1: find the one credential a request carries (`Authorization: Bearer …` or `x-api-key`).

Envoy hands over lower-cased headers; a header sent twice arrives joined with "," (or as two
entries of `header_map`). No token format we accept contains "," or whitespace, so either
shape of a repeated Authorization header is detected and refused with 400.
"""

from __future__ import annotations

import re
from typing import Mapping

from authz_service.errors import InvalidRequest, InvalidToken, MissingCredential
from authz_service.models import Credential
from mcp_pa.core.contract import HEADER_API_KEY, HEADER_AUTHORIZATION

MAX_TOKEN_BYTES = 8192  # larger tokens are refused before any parsing (RFC 8725 hygiene)
# Same characters as str.isspace; one C-level scan instead of a Python loop over a ~1 KB JWT.
_WHITESPACE = re.compile(r"\s")


def _has_whitespace(token: str) -> bool:
    # Every whitespace character except the space is unprintable, so for the usual printable
    # token one memchr decides; the regex only runs on tokens that are refused anyway.
    if token.isprintable():
        return " " in token
    return _WHITESPACE.search(token) is not None


def _bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidToken("the Authorization header must use the Bearer scheme")
    if not token or _has_whitespace(token):
        raise InvalidToken("the bearer token is empty or contains whitespace")
    return token


def _check_size_and_charset(value: str) -> None:
    # isascii() is O(1) in CPython and then len() is the byte length: no encoding per request.
    size = len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_TOKEN_BYTES:
        raise InvalidToken(f"the credential is longer than {MAX_TOKEN_BYTES} bytes")
    if not value.isascii() or not value.isprintable():
        raise InvalidToken("the credential contains characters outside printable ASCII")


def extract(headers: Mapping[str, str], repeated: Mapping[str, int] | None = None) -> Credential:
    """The request's credential; raises MissingCredential, InvalidRequest or InvalidToken.

    `repeated` counts header occurrences when Envoy sent a `header_map` (name → count).
    """
    authorization = headers.get(HEADER_AUTHORIZATION)
    api_key = headers.get(HEADER_API_KEY)
    if repeated and (repeated.get(HEADER_AUTHORIZATION, 0) > 1 or repeated.get(HEADER_API_KEY, 0) > 1):
        raise InvalidRequest("send exactly one Authorization or x-api-key header")
    if authorization is not None and "," in authorization:
        raise InvalidRequest("send exactly one Authorization header")
    if api_key is not None and "," in api_key:
        raise InvalidRequest("send exactly one x-api-key header")
    token = _bearer_token(authorization) if authorization is not None else None
    if token is not None and api_key is not None and token != api_key:
        raise InvalidRequest("send either an Authorization header or an x-api-key header, not both")
    if token is not None:
        _check_size_and_charset(token)
        return Credential(token, via_api_key_header=False)
    if api_key is not None:
        if not api_key:
            raise InvalidToken("the x-api-key header is empty")
        _check_size_and_charset(api_key)
        return Credential(api_key, via_api_key_header=True)
    raise MissingCredential("no credential: send Authorization: Bearer <token> or x-api-key")
