"""Real RS256/ES256 signing keys and token minting for the fake providers."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes | str | dict[str, Any]) -> str:
    """base64url without padding, of bytes, text or a JSON object."""
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes | str = b"") -> str:
    """A compact JWS with arbitrary header, payload and signature bytes (for attack cases)."""
    sig = signature if isinstance(signature, str) else b64url(signature)
    return f"{b64url(header)}.{b64url(payload)}.{sig}"


class SigningKey:
    """A private key with its kid and algorithm; `public_jwk()` goes in a JWKS."""

    def __init__(self, alg: str = "RS256", kid: str | None = None) -> None:
        if alg not in ("RS256", "ES256"):
            raise ValueError("SigningKey supports RS256 and ES256")
        self.alg = alg
        self.kid = kid or f"{alg.lower()}-{secrets.token_hex(4)}"
        if alg == "RS256":
            self.private_key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.private_key = ec.generate_private_key(ec.SECP256R1())

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers={"kid": self.kid, **(headers or {})})


def standard_claims(issuer: str, audience: str | list[str], subject: str, lifetime: int = 600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "exp": now + lifetime, **extra}
