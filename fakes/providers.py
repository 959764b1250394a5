"""A fake of every identity provider the authz service talks to, on one local HTTP server.

Real HTTP on 127.0.0.1 (threaded, no aiohttp), real JWKS with Cache-Control and key rotation,
OIDC discovery, Google tokeninfo/userinfo, GitHub /user, /user/emails, /user/orgs and
POST /applications/{client_id}/token with Basic auth. Every request is counted by path, and
any path prefix can be made to fail (HTTP status, or hang past the client's timeout).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fakes.tokens import SigningKey, standard_claims


class FakeIssuer:
    """A JWT issuer: key set at `<base>/jwks`, discovery at `<base>/.well-known/openid-configuration`."""

    def __init__(self, base_url: str, issuer: str | None = None, alg: str = "RS256") -> None:
        self.base_url = base_url
        self.issuer = issuer or base_url
        self.jwks_url = f"{base_url}/jwks"
        self.keys: list[SigningKey] = [SigningKey(alg)]
        self.cache_control = "public, max-age=300"
        self.extra_jwks: list[dict[str, Any]] = []  # raw entries appended to the served set
        self.metadata: dict[str, Any] = {}  # more discovery fields (fakes/oauth.py adds its endpoints)

    @property
    def key(self) -> SigningKey:
        return self.keys[0]

    def rotate(self, alg: str = "RS256", keep_old: bool = False) -> SigningKey:
        """A new signing key becomes current; the old one stays published only if keep_old."""
        new = SigningKey(alg)
        self.keys = [new, *self.keys] if keep_old else [new]
        return new

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys] + self.extra_jwks}

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": self.jwks_url, "id_token_signing_alg_values_supported": ["RS256", "ES256"], **self.metadata}

    def claims(self, aud: str | list[str], sub: str = "user-1", lifetime: int = 600, **extra: Any) -> dict[str, Any]:
        return standard_claims(self.issuer, aud, sub, lifetime, **extra)

    def mint(
        self,
        aud: str | list[str],
        sub: str = "user-1",
        lifetime: int = 600,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **extra: Any,
    ) -> str:
        """A token signed by the current (or given) key; extra claims override the standard ones."""
        return (key or self.key).sign(self.claims(aud, sub, lifetime, **extra), headers)


@dataclass
class FakeGitHubUser:
    """A GitHub account behind one token."""

    id: int
    login: str
    name: str | None = None
    emails: list[dict[str, Any]] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    app_client_id: str | None = None  # the OAuth app the token belongs to (None: a PAT)
    expires_at: float | None = None  # GitHub App user tokens (`ghu_`) expire; OAuth-app tokens never do


class FakeProviders:
    """The fake server; use as a context manager or call start()/stop()."""

    def __init__(self) -> None:
        self.issuers: dict[str, FakeIssuer] = {}
        self.google_tokens: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.github_tokens: dict[str, FakeGitHubUser] = {}
        self.github_apps: dict[str, str] = {}  # client_id → secret
        self.requests: Counter[str] = Counter()
        self.failures: dict[str, int | str] = {}  # path prefix → HTTP status or "hang"
        self.delays: dict[str, float] = {}  # path prefix → seconds to wait before a normal answer
        self.hang_seconds = 3.0
        # More endpoints (fakes/oauth.py): each answers (status, headers, payload) or None when not its path.
        self.routes: list[Any] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "FakeProviders":
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-providers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeProviders":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- configuration ---------------------------------------------------------------
    def issuer(self, path: str, issuer: str | None = None, alg: str = "RS256") -> FakeIssuer:
        """Serve a JWT issuer under path (e.g. "/auth0"); issuer defaults to its URL."""
        fake = FakeIssuer(f"{self.url}{path}", issuer, alg)
        self.issuers[path] = fake
        return fake

    def add_google_token(
        self, token: str, *, sub: str, aud: str, azp: str | None = None, email: str | None = None,
        email_verified: bool = True, name: str | None = None, expires_in: int = 3600, hd: str | None = None,
    ) -> None:
        info: dict[str, Any] = {"aud": aud, "azp": azp or aud, "sub": sub, "expires_in": str(expires_in), "scope": "openid email profile"}
        profile: dict[str, Any] = {"sub": sub}
        if email:
            info.update(email=email, email_verified="true" if email_verified else "false")
            profile.update(email=email, email_verified=email_verified)
        if name:
            profile["name"] = name
        if hd:  # Google Workspace accounts: tokeninfo and userinfo both carry the hosted domain
            info["hd"] = profile["hd"] = hd
        self.google_tokens[token] = (info, profile)

    def add_github_app(self, client_id: str, secret: str) -> None:
        self.github_apps[client_id] = secret

    def add_github_token(self, token: str, user: FakeGitHubUser) -> None:
        self.github_tokens[token] = user

    def fail(self, prefix: str, status: int | str = 503) -> None:
        """Make every path under prefix answer status (or "hang" past the client timeout)."""
        self.failures[prefix] = status

    def slow_down(self, prefix: str, seconds: float) -> None:
        """Answer paths under prefix normally, but only after seconds."""
        self.delays[prefix] = seconds

    def recover(self) -> None:
        self.failures.clear()
        self.delays.clear()

    def count(self, prefix: str) -> int:
        """Requests seen whose path starts with prefix."""
        with self._lock:
            return sum(n for path, n in self.requests.items() if path.startswith(prefix))

    def settings_env(self) -> dict[str, str]:
        """MCP_HTTP_* overrides that point Google and GitHub at this server."""
        return {
            "MCP_HTTP_GOOGLE_JWKS_URL": f"{self.url}/google/jwks",
            "MCP_HTTP_GOOGLE_TOKENINFO_URL": f"{self.url}/google/tokeninfo",
            "MCP_HTTP_GOOGLE_USERINFO_URL": f"{self.url}/google/userinfo",
            "MCP_HTTP_GITHUB_API_URL": f"{self.url}/github",
        }

    # ---- request handling ------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests[path] += 1
        for prefix, seconds in list(self.delays.items()):
            if path.startswith(prefix):
                time.sleep(seconds)
        for prefix, status in self.failures.items():
            if path.startswith(prefix):
                if status == "hang":
                    time.sleep(self.hang_seconds)
                    return 504, {}, {"message": "hung"}
                return int(status), {"retry-after": "7"}, {"message": "failure injected by the test"}
        for prefix, issuer in self.issuers.items():
            if path == f"{prefix}/jwks":
                return 200, {"cache-control": issuer.cache_control}, issuer.jwks()
            if path == f"{prefix}/.well-known/openid-configuration":
                return 200, {}, issuer.discovery()
        for route in self.routes:
            answer = route(method, path, query, headers, body)
            if answer is not None:
                return answer
        bearer = headers.get("authorization", "")
        token = bearer[7:] if bearer.lower().startswith("bearer ") else ""
        if path == "/google/tokeninfo":
            form = urllib.parse.parse_qs(body.decode()) if method == "POST" else query
            entry = self.google_tokens.get((form.get("access_token") or [""])[0])
            return (200, {}, entry[0]) if entry else (400, {}, {"error": "invalid_token"})
        if path == "/google/userinfo":
            entry = self.google_tokens.get(token)
            return (200, {}, entry[1]) if entry else (401, {}, {"error": "invalid_token"})
        if path.startswith("/github/"):
            return self._github(method, path[len("/github"):], headers, body, token)
        return 404, {}, {"message": "Not Found"}

    def _github(self, method: str, path: str, headers: dict[str, str], body: bytes, token: str) -> tuple[int, dict[str, str], Any]:
        if method == "POST" and path.startswith("/applications/") and path.endswith("/token"):
            client_id = path.split("/")[2]
            try:
                user_pass = base64.b64decode(headers.get("authorization", "")[6:]).decode()
            except ValueError:
                user_pass = ""
            if self.github_apps.get(client_id) is None or user_pass != f"{client_id}:{self.github_apps[client_id]}":
                return 401, {}, {"message": "Bad credentials"}
            user = self._github_user(json.loads(body or b"{}").get("access_token", ""))
            if user is None or user.app_client_id != client_id:
                return 404, {}, {"message": "Not Found"}
            return 200, {}, {"app": {"client_id": client_id}, "user": {"id": user.id, "login": user.login}}
        user = self._github_user(token)
        if user is None:
            return 401, {}, {"message": "Bad credentials"}
        if path == "/user":
            return 200, {}, {"id": user.id, "login": user.login, "name": user.name}
        if path == "/user/emails":
            return 200, {}, user.emails
        if path == "/user/orgs":
            return 200, {}, [{"login": org} for org in user.orgs]
        return 404, {}, {"message": "Not Found"}

    def _github_user(self, token: str) -> FakeGitHubUser | None:
        """The account behind a token GitHub still honours (unknown and expired tokens: None)."""
        user = self.github_tokens.get(token)
        if user is None or (user.expires_at is not None and time.time() >= user.expires_at):
            return None
        return user


def _handler(fake: FakeProviders) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake.handle(method, url.path, urllib.parse.parse_qs(url.query), headers, body)
            html = isinstance(payload, bytes)  # a page for a browser (the fake consent page)
            data = payload if html else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8" if html else "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class RequestTrap:
    """A listener that must never be called: counts every connection (for jku/x5u attacks)."""

    def __init__(self) -> None:
        self.hits = 0
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                trap.hits += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
