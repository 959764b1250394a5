"""The real stack for the security battery: PostgreSQL, authz, app, Envoy with TLS, fake providers.

One session-scoped `stack` runs every part as it runs in production, on free loopback ports:
its own embedded PostgreSQL (so the fault tests may stop and restart it without touching the
session database other suites share), `mcp-pa authz` with every provider pointed at the fake
providers, `mcp-pa app`, and Envoy derived from envoy/envoy.yaml. Callers talk HTTPS to Envoy
only; the app's port is used just to read its process for the soak's memory and fd checks.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import httpx
import pytest
import yaml

from authz_service.providers.apikey import key_hash
from fakes import FakeIssuer, FakeProviders, RequestTrap
from mcp_pa.core import contract
from mcp_pa.core.postgres import EmbeddedPostgres
from mcp_pa.up.certs import ensure_dev_certs
from mcp_pa.up.envoy_config import RateLimit
from tests.support.processes import free_port, scratch_dir
from tests.support.stack import App, Authz, Envoy, Reply, start_app, start_authz, start_envoy

GOOGLE_CLIENT = "security-client.apps.googleusercontent.com"
OIDC_AUDIENCE = "mcp-pa"
GITHUB_APP = ("Iv1.securityapp", "security-app-secret")
GOOGLE_ISSUER = "https://accounts.google.com"
JWKS_REFETCH_COOLDOWN = 1.0  # seconds; an unknown kid inside it is refused without a fetch

# Tenants of the keys file. alice and bob share tenant alpha; carol is alone in beta.
TENANT_A, TENANT_B = "alpha", "beta"
SUSPENDED_DOMAIN, SUSPENDED_TENANT = "frozen.test", "frozen"
DENIED_DOMAIN = "evil.test"


def _key(name: str) -> str:
    return f"mcp_sk_security_{name}_{'0123456789abcdef' * 2}"


# id → (key, tenant, permissions, extra record fields)
KEY_RECORDS: dict[str, tuple[str, str, list[str], dict[str, Any]]] = {
    "alice": (_key("alice"), TENANT_A, ["read", "write"], {}),
    "bob": (_key("bob"), TENANT_A, ["read", "write"], {}),
    "carol": (_key("carol"), TENANT_B, ["read", "write"], {}),
    "reader": (_key("reader"), TENANT_A, ["read"], {}),
    "admin": (_key("admin"), TENANT_A, ["admin", "read", "write"], {}),
    "soak": (_key("soak"), "soak", ["read", "write"], {}),
    "fuzzer": (_key("fuzzer"), "fuzz", ["read", "write"], {}),
    "pgfault": (_key("pgfault"), "pgfault", ["read", "write"], {}),
    "expired": (_key("expired"), TENANT_A, ["read", "write"], {"expires": "2020-01-01T00:00:00Z"}),
    "disabled": (_key("disabled"), TENANT_A, ["read", "write"], {"disabled": True}),
}
KEYS = {name: record[0] for name, record in KEY_RECORDS.items()}

MCP_ACCEPT = "application/json, text/event-stream"


def keys_file_text(more: list[dict[str, Any]] | None = None) -> str:
    """The keys file of KEY_RECORDS, plus `more` raw records."""
    records = [
        {"id": name, "sha256": key_hash(key), "tenant": tenant, "permissions": perms, **extra}
        for name, (key, tenant, perms, extra) in KEY_RECORDS.items()
    ]
    return yaml.safe_dump({"keys": records + (more or [])})


def tenants_file_text() -> str:
    return yaml.safe_dump(
        {
            "domains": {SUSPENDED_DOMAIN: SUSPENDED_TENANT},
            "denied_domains": [DENIED_DOMAIN],
            "tenants": {SUSPENDED_TENANT: {"suspended": True, "issuers": ["oidc-corp"]}},  # corp vouches for frozen.test
        }
    )


def tool_call(name: str, arguments: Mapping[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    """A JSON-RPC tools/call message."""
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name, "arguments": dict(arguments or {})}}


def mcp_headers(credential: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """Headers of a Streamable HTTP POST (JSON response), plus a credential and extras."""
    return {"content-type": "application/json", "accept": MCP_ACCEPT, **(credential or {}), **extra}


def api_key(name: str) -> dict[str, str]:
    return {contract.HEADER_API_KEY: KEYS[name]}


def bearer(token: str) -> dict[str, str]:
    return {contract.HEADER_AUTHORIZATION: f"Bearer {token}"}


class FaultyProviders(FakeProviders):
    """The fake providers with two more failures: a 200 whose body is not JSON, and a
    connection closed without any answer (a provider that is down mid-request)."""

    def __init__(self) -> None:
        super().__init__()
        self.garbage: set[str] = set()  # path prefixes answered with broken JSON
        self.closed: set[str] = set()  # path prefixes whose connections are dropped
        fake = self
        base: Any = self._server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def _serve(self, method: str) -> None:
                path = urllib.parse.urlsplit(self.path).path
                if any(path.startswith(p) for p in fake.closed):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if any(path.startswith(p) for p in fake.garbage):
                    body = b'{"keys": [{"kty": "RSA", "aud": '  # cut off mid-document
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super()._serve(method)

        self._server.RequestHandlerClass = Handler

    def recover(self) -> None:
        super().recover()
        self.garbage.clear()
        self.closed.clear()


@dataclass
class Stack:
    """Every part of the running system and the ways tests reach it."""

    directory: Path
    envoy: Envoy
    authz: Authz
    app: App
    postgres: EmbeddedPostgres
    fake: FaultyProviders
    trap: RequestTrap
    keys_file: Path
    tenants_file: Path
    authz_env: dict[str, str] = field(repr=False, default_factory=dict)

    # ---- identities ------------------------------------------------------------------
    @property
    def resource(self) -> str:
        return f"{self.envoy.public_url}{contract.MCP_PATH}"

    @property
    def google(self) -> FakeIssuer:
        return self.fake.issuers["/google"]

    @property
    def auth0(self) -> FakeIssuer:
        return self.fake.issuers["/auth0"]

    @property
    def oidc(self) -> FakeIssuer:
        return self.fake.issuers["/oidc"]

    def google_token(self, sub: str = "g-1", email: str = "gina@gmail.com", **claims: Any) -> str:
        return self.google.mint(GOOGLE_CLIENT, sub=sub, email=email, email_verified=True, **claims)

    def auth0_token(self, sub: str = "auth0|a1", **claims: Any) -> str:
        claims.setdefault("permissions", ["mcp:read", "mcp:write"])
        return self.auth0.mint([self.resource], sub=sub, **claims)

    def oidc_token(self, sub: str = "o-1", email: str = "olga@corp.test", **claims: Any) -> str:
        return self.oidc.mint(OIDC_AUDIENCE, sub=sub, email=email, email_verified=True, **claims)

    # ---- requests through Envoy ------------------------------------------------------
    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes | None = None, **kwargs: Any) -> Reply:
        return self.envoy.request(method, path, headers, body, **kwargs)

    def rpc(self, credential: Mapping[str, str] | None, message: Mapping[str, Any], **extra: str) -> Reply:
        """POST one JSON-RPC message to /mcp through Envoy."""
        return self.request("POST", contract.MCP_PATH, mcp_headers(credential, **extra), json.dumps(message).encode())

    def call(self, credential: Mapping[str, str], tool: str, /, **arguments: Any) -> dict[str, Any]:
        """tools/call through Envoy; asserts HTTP 200 and returns the JSON-RPC result."""
        reply = self.rpc(credential, tool_call(tool, arguments))
        assert reply.status == 200, f"{tool}: HTTP {reply.status} {reply.body[:300]!r}"
        message = reply.json()
        assert "result" in message, f"{tool}: {message}"
        return message["result"]

    def ok(self, credential: Mapping[str, str], tool: str, /, **arguments: Any) -> dict[str, Any]:
        result = self.call(credential, tool, **arguments)
        assert not result.get("isError"), f"{tool} failed: {result['content'][0]['text']}"
        return result["structuredContent"]

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.envoy.public_url, verify=self.envoy.tls_context(), timeout=30, **kwargs)

    # ---- restarts ----------------------------------------------------------------------
    def restart_authz(self) -> None:
        self.authz.stop()
        self.authz = start_authz(self.directory / "authz", self.authz.port, self.envoy.public_url, self.authz_env)

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def authz_environment(fake: FakeProviders, public_url: str, keys_file: Path, tenants_file: Path) -> dict[str, str]:
    return {
        **fake.settings_env(),
        "MCP_HTTP_GOOGLE_CLIENT_ID": GOOGLE_CLIENT,
        "MCP_HTTP_AUTH0_DOMAIN": "security.auth0.example",
        "MCP_HTTP_AUTH0_ISSUER": fake.issuers["/auth0"].issuer,
        "MCP_HTTP_AUTH0_JWKS_URL": fake.issuers["/auth0"].jwks_url,
        "MCP_HTTP_AUTH0_AUDIENCE": f"{public_url}{contract.MCP_PATH}",
        "MCP_HTTP_OIDC_PROVIDERS": json.dumps([{"name": "corp", "issuer": fake.issuers["/oidc"].issuer, "audience": OIDC_AUDIENCE}]),
        "MCP_HTTP_GITHUB_ENABLED": "true",
        "MCP_HTTP_GITHUB_CLIENT_ID": GITHUB_APP[0],
        "MCP_HTTP_GITHUB_CLIENT_SECRET": GITHUB_APP[1],
        "MCP_HTTP_API_KEYS_FILE": str(keys_file),
        "MCP_HTTP_TENANTS_FILE": str(tenants_file),
        # Short so that fault tests see recovery quickly; the rules are the same as in production.
        "MCP_HTTP_PROVIDER_TIMEOUT": "1.0",
        "MCP_HTTP_FAILURE_CACHE_TTL": "1",
        "MCP_HTTP_JWKS_REFETCH_COOLDOWN": str(JWKS_REFETCH_COOLDOWN),
        "MCP_HTTP_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("security")
    certs = ensure_dev_certs(directory / "tls")
    keys_file, tenants_file = directory / "keys.yaml", directory / "tenants.yaml"
    keys_file.write_text(keys_file_text())
    tenants_file.write_text(tenants_file_text())
    started: list[Any] = []
    with ExitStack() as resources:
        # Outside pytest's temp root (see scratch_dir); the stack's own server, so that the fault
        # tests may stop and restart it without touching the session database other suites share.
        pg_root = resources.enter_context(scratch_dir("mcp-pa-security-pg-"))
        postgres = resources.enter_context(EmbeddedPostgres(pg_root / "pgdata"))
        fake = FaultyProviders().start()
        resources.callback(fake.stop)
        fake.issuer("/google", issuer=GOOGLE_ISSUER)
        fake.issuer("/auth0", issuer=f"{fake.url}/auth0/")
        fake.issuer("/oidc", alg="ES256")
        fake.add_github_app(*GITHUB_APP)
        trap = RequestTrap()
        resources.callback(trap.close)
        resources.callback(_stop_in_parallel, started)
        https_port, authz_port = free_port(), free_port()
        public_url = f"https://localhost:{https_port}"
        env = authz_environment(fake, public_url, keys_file, tenants_file)
        app = start_app(directory, postgres.dsn, public_url, env)
        started.append(app)
        authz = start_authz(directory / "authz", authz_port, public_url, env)
        started.append(authz)
        envoy = start_envoy(
            directory / "envoy",
            certs,
            https_port=https_port,
            authz_port=authz_port,
            app_port=app.port,
            # Generous: the battery's own traffic must never meet a limit it is not testing
            # (the brute-force case runs its own Envoy with a small per-address bucket).
            per_address_limit=RateLimit(1_000_000, 60),
            per_tenant_limit=RateLimit(1_000_000, 60),
        )
        started.append(envoy)
        stack = Stack(directory, envoy, authz, app, postgres, fake, trap, keys_file, tenants_file, env)
        yield stack
        started[1] = stack.authz  # a test may have restarted it


def _stop_in_parallel(parts: list[Any]) -> None:
    """Each part may take its grace period to stop: stop them side by side."""
    with ThreadPoolExecutor(len(parts) or 1) as pool:
        list(pool.map(lambda part: part.stop(), parts))


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def process_rss_kib(pid: int) -> int:
    """Resident set size of a process and its children (authz workers, uvicorn), in KiB."""
    total = 0
    for p in [pid, *_children(pid)]:
        with open(f"/proc/{p}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def open_fds(pid: int) -> int:
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in [pid, *_children(pid)])


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return []
