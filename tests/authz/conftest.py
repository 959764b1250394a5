"""Fixtures for the authz suite: fake providers and an in-process grpc.aio server on a real socket."""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterator

import grpc
import pytest

from authz_service.proto import external_auth_pb2_grpc
from authz_service.server import Running, start
from fakes import FakeGitHubUser, FakeIssuer, FakeProviders
from mcp_pa.core.settings import Settings
from tests.support.authz import Decision, check_request, decode

GOOGLE_CLIENT = "google-client-1.apps.googleusercontent.com"
AUTH0_AUDIENCE = "https://mcp.example.com/mcp"
OIDC_AUDIENCE = "mcp-pa"
AUTH0_DOMAIN = "corp.example"
GITHUB_APP = ("Iv1.testapp", "test-app-secret")
STATIC_KEY = "dev-key-0123456789-abcdefghijklmnop"
PUBLIC_URL = "https://mcp.example.com"
RESOURCE_METADATA = f"{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp"


class AuthzClient:
    """A real gRPC channel to a running server, with helpers to ask it about one request."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        self.stub = external_auth_pb2_grpc.AuthorizationStub(self.channel)

    async def check(self, headers: dict[str, str] | None = None, **kwargs: Any) -> Decision:
        return decode(await self.stub.Check(check_request(headers, **kwargs), timeout=20))

    async def bearer(self, token: str, **extra: str) -> Decision:
        return await self.check({"authorization": f"Bearer {token}", **extra})

    async def close(self) -> None:
        await self.channel.close()
        await self.running.stop(grace=0)


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeProviders]:
    with FakeProviders() as server:
        server.issuer("/google", issuer="https://accounts.google.com")
        server.issuer("/auth0", issuer=f"{server.url}/auth0/")
        server.issuer("/oidc", alg="ES256")
        server.add_github_app(*GITHUB_APP)
        yield server


def issuer(fake: FakeProviders, name: str) -> FakeIssuer:
    return fake.issuers[f"/{name}"]


def make_settings(fake: FakeProviders, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "api_key": STATIC_KEY,
        "google_client_id": [GOOGLE_CLIENT],
        "google_jwks_url": f"{fake.url}/google/jwks",
        "google_tokeninfo_url": f"{fake.url}/google/tokeninfo",
        "google_userinfo_url": f"{fake.url}/google/userinfo",
        "auth0_domain": "tenant.auth0.example",
        "auth0_issuer": f"{fake.url}/auth0/",
        "auth0_jwks_url": f"{fake.url}/auth0/jwks",
        "auth0_audience": AUTH0_AUDIENCE,
        "auth0_domains": [AUTH0_DOMAIN],  # the Auth0 tenant vouches for corp.example only
        "oidc_providers": [{"name": "corp", "issuer": f"{fake.url}/oidc", "audience": OIDC_AUDIENCE}],
        "github_enabled": True,
        "github_client_id": GITHUB_APP[0],
        "github_client_secret": GITHUB_APP[1],
        "github_api_url": f"{fake.url}/github",
        "provider_timeout": 3.0,  # generous: a busy 2-core CI machine must not turn a slow fake into an outage
        "jwks_refetch_cooldown": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


async def serve(settings: Settings) -> AuthzClient:
    return AuthzClient(await start(settings, "127.0.0.1:0"))


@pytest.fixture(scope="session")
async def authz(fake: FakeProviders) -> AsyncIterator[AuthzClient]:
    """The service with every provider configured against the fakes."""
    client = await serve(make_settings(fake))
    yield client
    await client.close()


def github_user(user_id: int, *, email: str | None = None, verified: bool = True, orgs: list[str] | None = None, app: bool = True) -> FakeGitHubUser:
    emails = [{"email": email, "primary": True, "verified": verified}] if email else []
    return FakeGitHubUser(user_id, f"user{user_id}", f"User {user_id}", emails, orgs or [], GITHUB_APP[0] if app else None)
