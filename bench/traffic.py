"""What the load generators send: CheckRequests as Envoy builds them, tokens, and a grpc.aio driver.

h2load repeats one body, which is right for the cached-token path. A first-seen credential
needs a different body per request, so those runs (and the cache fill of the memory part) use
`drive()`: a grpc.aio client that sends pre-serialized requests and checks every answer is OK.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Iterable, Mapping, Sequence

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.rpc import code_pb2

from authz_service.proto import attribute_context_pb2, external_auth_pb2
from authz_service.server import SERVICE_NAME
from bench.load import BenchError, Measurement, latencies_ms
from fakes.providers import FakeIssuer
from fakes.tokens import b64url
from mcp_pa.core.contract import HEADER_API_KEY, HEADER_AUTHORIZATION, HEADER_MCP_METHOD, HEADER_MCP_NAME, MCP_PATH

CHECK_METHOD = f"/{SERVICE_NAME}/Check"


def check_request(credential_headers: Mapping[str, str], tool: str = "list_todos") -> bytes:
    """A serialized CheckRequest shaped like Envoy's for `POST /mcp` calling a tool."""
    http = attribute_context_pb2.AttributeContext.HttpRequest(
        id=str(uuid.uuid4()),
        method="POST",
        path=MCP_PATH,
        host="localhost:8443",
        scheme="https",
        protocol="HTTP/2",
        headers={
            ":authority": "localhost:8443",
            ":method": "POST",
            ":path": MCP_PATH,
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-06-18",
            HEADER_MCP_METHOD: "tools/call",
            HEADER_MCP_NAME: tool,
            "user-agent": "mcp-pa-bench",
            **credential_headers,
        },
    )
    request = external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(request=attribute_context_pb2.AttributeContext.Request(http=http))
    )
    return request.SerializeToString()


def bearer(token: str) -> dict[str, str]:
    return {HEADER_AUTHORIZATION: f"Bearer {token}"}


def api_key(key: str) -> dict[str, str]:
    return {HEADER_API_KEY: key}


def identity_claims(issuer: FakeIssuer, audience: str, index: int, lifetime: int = 3600) -> dict[str, Any]:
    """Claims of a realistic signed-in user: subject, verified work email and a display name."""
    return issuer.claims(
        audience, sub=f"bench-user-{index:06d}", lifetime=lifetime,
        email=f"user{index}@bench.example.com", email_verified=True, name=f"Bench User {index}",
    )


class Ed25519Signer:
    """An Ed25519 key published in an issuer's JWKS, for minting many distinct tokens cheaply.

    Ed25519 is the cheapest JWT signature both to make (here) and to verify (in the authz
    service), so 100,000 first-seen tokens fill the cache in seconds rather than minutes. The
    header segment is built once; PyJWT's encode would cost more than the signature itself.
    """

    def __init__(self, issuer: FakeIssuer, kid: str = "ed25519-bench") -> None:
        self.issuer = issuer
        self.private_key = ed25519.Ed25519PrivateKey.generate()
        public = self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        issuer.extra_jwks.append({"kty": "OKP", "crv": "Ed25519", "x": b64url(public), "kid": kid, "use": "sig", "alg": "EdDSA"})
        self._head = b64url({"alg": "EdDSA", "kid": kid, "typ": "JWT"})

    def tokens(self, audience: str, count: int, start: int = 0) -> list[str]:
        """`count` distinct tokens for users start, start+1, …"""
        found = []
        for index in range(start, start + count):
            signing_input = f"{self._head}.{b64url(identity_claims(self.issuer, audience, index))}"
            found.append(f"{signing_input}.{b64url(self.private_key.sign(signing_input.encode()))}")
        return found


def rs256_tokens(issuer: FakeIssuer, audience: str, count: int, start: int = 0) -> list[str]:
    """`count` distinct RS256 tokens (PyJWT; RSA signing dominates anyway)."""
    return [issuer.key.sign(identity_claims(issuer, audience, i)) for i in range(start, start + count)]


def is_ok(raw: bytes) -> bool:
    return external_auth_pb2.CheckResponse.FromString(raw).status.code == code_pb2.OK


async def drive(target: str, bodies: Iterable[bytes], concurrency: int, total: int | None = None) -> Measurement:
    """Send every body once as a Check over one channel, `concurrency` in flight; all must be OK."""
    latencies: list[float] = []
    refused = 0
    source = iter(bodies)
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(CHECK_METHOD)  # bytes in, bytes out: no client-side protobuf work

        async def worker() -> None:
            nonlocal refused
            for body in source:
                started = time.perf_counter()
                raw = await call(body, timeout=30)
                latencies.append((time.perf_counter() - started) * 1e6)
                if not is_ok(raw):
                    refused += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    if refused:
        raise BenchError(f"{refused} of {len(latencies)} checks against {target} were refused")
    if total is not None and len(latencies) != total:
        raise BenchError(f"sent {len(latencies)} checks, expected {total}")
    p50, p99 = latencies_ms(latencies)
    return Measurement(len(latencies) / elapsed, p50, p99, len(latencies), 0, 0)


async def check_once(target: str, body: bytes) -> bytes:
    """One Check (used to prove a body is allowed before h2load repeats it)."""
    async with grpc.aio.insecure_channel(target) as channel:
        return await channel.unary_unary(CHECK_METHOD)(body, timeout=30)


def require_allowed(target: str, body: bytes, what: str) -> None:
    raw = asyncio.run(check_once(target, body))
    if not is_ok(raw):
        response = external_auth_pb2.CheckResponse.FromString(raw)
        raise BenchError(f"{what}: the check was refused: {response.denied_response.body or response.status}")


def oidc_setting(name: str, issuer: FakeIssuer, audience: str) -> dict[str, str]:
    return {"name": name, "issuer": issuer.issuer, "audience": audience, "jwks_url": issuer.jwks_url}


def oidc_env(providers: Sequence[dict[str, str]]) -> dict[str, str]:
    return {"MCP_HTTP_OIDC_PROVIDERS": json.dumps(list(providers))}
