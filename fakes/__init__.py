"""Fake identity providers for every test suite: real HTTP on 127.0.0.1, real signed tokens.

    from fakes import FakeProviders, SigningKey
    with FakeProviders() as fake:
        auth0 = fake.issuer("/auth0")                  # JWKS + discovery at fake.url + "/auth0"
        token = auth0.mint(sub="auth0|abc", aud="https://mcp.example/mcp")
        fake.add_google_token("ya29.x", sub="1", aud="client-1", email="a@b.com")
        fake.add_github_token("gho_x", user_id=7, login="octo", app_client_id="app")
        settings_env = fake.settings_env()             # MCP_HTTP_* overrides pointing here
"""

from fakes.clock import FakeClock
from fakes.providers import FakeGitHubUser, FakeIssuer, FakeProviders, RequestTrap
from fakes.tokens import SigningKey, b64url, forge

__all__ = ["FakeClock", "FakeGitHubUser", "FakeIssuer", "FakeProviders", "RequestTrap", "SigningKey", "b64url", "forge"]
