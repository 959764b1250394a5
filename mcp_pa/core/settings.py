"""All settings, read once from the environment (`MCP_HTTP_*`) into one typed object.

Nothing else in the project reads the environment. `Settings()` validates; in production it
refuses unsafe combinations with a message that names the variable to fix.
"""

from __future__ import annotations

import json
import urllib.parse
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mcp_pa.core.net import is_loopback_url

ENV_PREFIX = "MCP_HTTP_"


class OIDCProvider(BaseModel):
    """One generic OIDC issuer from MCP_HTTP_OIDC_PROVIDERS."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    issuer: str
    audience: str
    jwks_url: str | None = None  # optional: skip discovery
    # Email domains this issuer is authoritative for: only these (and tenants whose tenants-file
    # entry names the issuer in `issuers`) give its users a domain tenant or admin rights.
    domains: list[str] = []
    # True: the token's mcp:* scopes are the permissions (the issuer decides); false: they only narrow.
    trust_scopes: bool = False
    # The issuer's public client (PKCE, device code) that `mcp-pa login` uses; published at /.well-known/mcp-pa-login.
    login_client_id: str | None = None


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CSV = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """The typed settings of every mcp-pa process (see the README's settings table)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", case_sensitive=False)

    environment: Literal["development", "production"] = "development"
    public_url: str = "https://localhost:8443"
    database_connection_string: str | None = None
    state_dir: Path = Path(".mcp-pa")
    log_level: str = "INFO"

    # Google
    google_client_id: CSV = []
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    google_tokeninfo_url: str = "https://oauth2.googleapis.com/tokeninfo"
    google_userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    # Sign-in: a Google "Desktop app" client for `mcp-pa login` (Google documents its secret as not confidential).
    google_login_client_id: str | None = None
    google_login_client_secret: str | None = None
    google_authorization_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_revocation_url: str = "https://oauth2.googleapis.com/revoke"

    # Auth0
    auth0_domain: str | None = None
    auth0_audience: str | None = None
    auth0_issuer: str | None = None  # default https://<domain>/
    auth0_jwks_url: str | None = None  # default <issuer>.well-known/jwks.json
    auth0_login_client_id: str | None = None  # an Auth0 Native application for `mcp-pa login`
    auth0_domains: CSV = []  # email domains the Auth0 tenant is authoritative for

    # GitHub
    github_enabled: bool = False
    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_allowed_orgs: CSV = []
    github_allow_any_token: bool = False
    github_api_url: str = "https://api.github.com"
    github_web_url: str | None = None  # default: github.com for api.github.com, else the API URL without /api/v3 (Enterprise)

    # Order of `authorization_servers` in the Protected Resource Metadata, by provider name
    # (auth0, oidc-<name>, google, github); unset: Auth0, the OIDC issuers, Google, GitHub.
    authorization_servers: CSV = []

    # Generic OIDC issuers
    oidc_providers: Annotated[list[OIDCProvider], NoDecode] = []

    # API keys and tenants
    api_key: str | None = None
    api_keys_file: Path | None = None
    tenants_file: Path | None = None

    # Caching and timeouts
    token_cache_ttl: int = Field(default=300, ge=0, le=86400)
    token_cache_max_entries: int = Field(default=200_000, ge=100)
    failure_cache_ttl: int = Field(default=10, ge=0, le=600)
    provider_timeout: float = Field(default=3.0, gt=0, le=30)
    jwks_refetch_cooldown: float = Field(default=30.0, ge=0)

    # Browser origins allowed to call /mcp
    allowed_origins: CSV = []

    # Semantic search: local (a model inside a Python package, offline), openai (any OpenAI-compatible /v1/embeddings), off
    embeddings: Literal["local", "openai", "off"] = "local"
    embeddings_url: str | None = None  # openai: the endpoint's base URL, e.g. http://127.0.0.1:11434/v1
    embeddings_model: str | None = None  # openai: the model name sent with every request
    embeddings_api_key: str | None = None  # openai: sent as a bearer token; never logged

    # Process ports (the CLI flags override the listen addresses)
    authz_metrics_port: int = Field(default=9102, ge=0, le=65535)

    @field_validator("google_client_id", "github_allowed_orgs", "allowed_origins", "authorization_servers", "auth0_domains", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        return _csv(value)

    @field_validator("oidc_providers", mode="before")
    @classmethod
    def _parse_oidc(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return []
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"MCP_HTTP_OIDC_PROVIDERS must be a JSON list: {exc}") from exc
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def resource_url(self) -> str:
        """The MCP resource URI (RFC 8707 / RFC 9728): `<PUBLIC_URL>/mcp`."""
        return f"{self.public_url}/mcp"

    @property
    def auth0_issuer_url(self) -> str | None:
        if self.auth0_issuer:
            return self.auth0_issuer
        return f"https://{self.auth0_domain}/" if self.auth0_domain else None

    @property
    def auth0_jwks(self) -> str | None:
        issuer = self.auth0_issuer_url
        if self.auth0_jwks_url:
            return self.auth0_jwks_url
        return f"{issuer.rstrip('/')}/.well-known/jwks.json" if issuer else None

    @property
    def github_web(self) -> str:
        """GitHub's web origin (OAuth endpoints live there, not on the API host)."""
        if self.github_web_url:
            return self.github_web_url.rstrip("/")
        api = self.github_api_url.rstrip("/")
        if api == "https://api.github.com":
            return "https://github.com"
        return api.removesuffix("/api/v3")

    def provider_urls(self) -> dict[str, str]:
        """Every outbound provider URL by its setting name (for the plain-http rule)."""
        urls = {
            "GOOGLE_JWKS_URL": self.google_jwks_url,
            "GOOGLE_TOKENINFO_URL": self.google_tokeninfo_url,
            "GOOGLE_USERINFO_URL": self.google_userinfo_url,
            "GITHUB_API_URL": self.github_api_url,
            "GITHUB_WEB_URL": self.github_web,
            "GOOGLE_AUTHORIZATION_URL": self.google_authorization_url,
            "GOOGLE_TOKEN_URL": self.google_token_url,
            "GOOGLE_REVOCATION_URL": self.google_revocation_url,
        }
        if self.auth0_issuer_url:
            urls["AUTH0_ISSUER"] = self.auth0_issuer_url
        if self.auth0_jwks:
            urls["AUTH0_JWKS_URL"] = self.auth0_jwks
        for p in self.oidc_providers:
            urls[f"OIDC_PROVIDERS[{p.name}].issuer"] = p.issuer
            if p.jwks_url:
                urls[f"OIDC_PROVIDERS[{p.name}].jwks_url"] = p.jwks_url
        return urls

    @model_validator(mode="after")
    def _check_safety(self) -> "Settings":
        problems: list[str] = []
        for name, url in self.provider_urls().items():
            scheme = urllib.parse.urlsplit(url).scheme
            if scheme == "https":
                continue
            if scheme == "http" and is_loopback_url(url) and not self.is_production:
                continue
            problems.append(
                f"{ENV_PREFIX}{name}={url!r}: provider URLs must be https "
                "(plain http only for loopback addresses outside production)"
            )
        if self.github_enabled and self.github_client_id and not self.github_client_secret:
            problems.append(f"{ENV_PREFIX}GITHUB_CLIENT_SECRET is required when {ENV_PREFIX}GITHUB_CLIENT_ID is set")
        if self.google_login_client_id and not self.google_login_client_secret:
            problems.append(
                f"{ENV_PREFIX}GOOGLE_LOGIN_CLIENT_SECRET is required with {ENV_PREFIX}GOOGLE_LOGIN_CLIENT_ID "
                "(Google's Desktop-app clients exchange codes with their secret)"
            )
        known = {"auth0", "google", "github", *(f"oidc-{p.name}" for p in self.oidc_providers)}
        for name in self.authorization_servers:
            if name not in known:
                problems.append(f"{ENV_PREFIX}AUTHORIZATION_SERVERS: unknown provider {name!r} (one of {', '.join(sorted(known))})")
        names = [p.name for p in self.oidc_providers]
        if len(names) != len(set(names)):
            problems.append(f"{ENV_PREFIX}OIDC_PROVIDERS: provider names must be unique")
        if self.is_production:
            if not self.public_url.startswith("https://"):
                problems.append(f"{ENV_PREFIX}PUBLIC_URL must be an https:// URL in production")
            if self.api_key is not None and len(self.api_key) < 32:
                problems.append(f"{ENV_PREFIX}API_KEY must be at least 32 characters in production")
            if self.github_allow_any_token:
                problems.append(
                    f"{ENV_PREFIX}GITHUB_ALLOW_ANY_TOKEN is refused in production: set "
                    f"{ENV_PREFIX}GITHUB_CLIENT_ID and {ENV_PREFIX}GITHUB_CLIENT_SECRET instead"
                )
            if self.github_enabled and not (self.github_client_id and self.github_client_secret):
                problems.append(
                    f"{ENV_PREFIX}GITHUB_ENABLED needs {ENV_PREFIX}GITHUB_CLIENT_ID and "
                    f"{ENV_PREFIX}GITHUB_CLIENT_SECRET in production"
                )
            if self.database_connection_string is None:
                problems.append(f"{ENV_PREFIX}DATABASE_CONNECTION_STRING is required in production")
        if problems:
            raise ValueError("unsafe or invalid settings:\n  - " + "\n  - ".join(problems))
        if self.google_login_client_id and self.google_login_client_id not in self.google_client_id:
            # The login client's ID tokens are what `mcp-pa login` sends, so it is an accepted audience.
            self.google_client_id = [*self.google_client_id, self.google_login_client_id]
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once at start."""
    return Settings()
