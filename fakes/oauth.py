"""Fake OAuth authorization servers on the fake providers' HTTP server, for `mcp-pa login` tests.

Each behaves like its real counterpart where a client can tell: an authorize endpoint with a
consent page a browser clicks through (PKCE S256 required, loopback redirects on any port), a
token endpoint (code + PKCE verification; refresh; rotation with reuse detection that revokes
the whole family, as Auth0 and Keycloak do), the device authorization grant with
`authorization_pending` and `slow_down`, and revocation. The fake GitHub answers token-endpoint
errors with HTTP 200 and GitHub's own error names, as github.com does; with `github_app_tokens`
it is a GitHub App with "expire user authorization tokens": `ghu_` tokens valid 8 hours and a
`ghr_` refresh token that each refresh replaces (the old one stops working). Tokens are real: JWTs signed by the
issuer's key (Auth0, OIDC, Google ID tokens) or opaque tokens registered with the fake Google
tokeninfo / GitHub API, so the real authz service accepts them.

    oauth = FakeAuthorizationServer.auth0(fake, audience="https://localhost:8443/mcp")
    oauth.add_client("native-app")              # a public client
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fakes.providers import FakeGitHubUser, FakeIssuer, FakeProviders

GOOGLE_ISSUER = "https://accounts.google.com"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# github.com's lifetimes for a GitHub App's expiring user tokens (8 hours; the refresh token ~6 months).
GITHUB_USER_TOKEN_LIFETIME = 28800
GITHUB_REFRESH_TOKEN_LIFETIME = 15897600
# The names github.com gives the RFC 6749 errors at /login/oauth/access_token (always with HTTP 200).
GITHUB_ERRORS = {"invalid_client": "incorrect_client_credentials", "unsupported_grant_type": "unsupported_grant_type"}
GITHUB_GRANT_ERRORS = {"authorization_code": "bad_verification_code", "refresh_token": "bad_refresh_token", DEVICE_GRANT: "incorrect_device_code"}

Answer = tuple[int, dict[str, str], Any]


@dataclass
class FakeUser:
    """Who clicks "Allow" on the consent page (or approves the device code)."""

    sub: str = "user-1"
    email: str = "alice@example.com"
    name: str = "Alice Example"
    email_verified: bool = True
    github_id: int = 583231
    github_login: str = "alice"


@dataclass
class _Refresh:
    client_id: str
    scope: str
    audience: str | None
    family: str
    used: bool = False


@dataclass
class _Device:
    client_id: str
    scope: str
    audience: str | None
    user_code: str
    expires_at: float
    approved: bool = False
    denied: bool = False
    last_poll: float = 0.0


@dataclass
class FakeAuthorizationServer:
    """One provider's OAuth endpoints under `prefix` of a FakeProviders server."""

    fake: FakeProviders
    prefix: str
    kind: str  # "auth0", "oidc", "google" or "github"
    issuer: FakeIssuer | None
    audience: str | None = None  # the `aud` of OIDC access tokens (Keycloak's audience mapper)
    access_lifetime: int = 600
    rotate_refresh_tokens: bool = True
    device_interval: int = 1
    github_app_tokens: bool = False  # GitHub only: a GitHub App with expiring user tokens (else a classic OAuth app)
    user: FakeUser = field(default_factory=FakeUser)
    clients: dict[str, str | None] = field(default_factory=dict)  # client id → secret (None: public)
    requests: Counter[str] = field(default_factory=Counter)  # "refresh_token", "authorization_code", … per grant
    issued: list[str] = field(default_factory=list)  # every access, ID and refresh token handed out, oldest first
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    _refresh: dict[str, _Refresh] = field(default_factory=dict)
    _revoked_families: set[str] = field(default_factory=set)
    _devices: dict[str, _Device] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- the four providers ---------------------------------------------------------------
    @classmethod
    def auth0(cls, fake: FakeProviders, audience: str, prefix: str = "/auth0") -> "FakeAuthorizationServer":
        issuer = fake.issuers.get(prefix) or fake.issuer(prefix, f"{fake.url}{prefix}/")
        return cls(fake, prefix, "auth0", issuer, audience=audience).install()

    @classmethod
    def oidc(cls, fake: FakeProviders, audience: str, prefix: str = "/keycloak") -> "FakeAuthorizationServer":
        issuer = fake.issuers.get(prefix) or fake.issuer(prefix)
        return cls(fake, prefix, "oidc", issuer, audience=audience).install()

    @classmethod
    def google(cls, fake: FakeProviders) -> "FakeAuthorizationServer":
        issuer = fake.issuers.get("/google") or fake.issuer("/google", GOOGLE_ISSUER)
        return cls(fake, "/google", "google", issuer, rotate_refresh_tokens=False).install()

    @classmethod
    def github(cls, fake: FakeProviders) -> "FakeAuthorizationServer":
        return cls(fake, "/github", "github", None, rotate_refresh_tokens=False).install()

    def install(self) -> "FakeAuthorizationServer":
        self.fake.routes.append(self.handle)
        if self.issuer is not None:
            self.issuer.metadata.update(
                authorization_endpoint=self.url("/authorize"),
                token_endpoint=self.url("/token"),
                device_authorization_endpoint=self.url("/device/code"),
                revocation_endpoint=self.url("/revoke"),
                code_challenge_methods_supported=["S256"],
                grant_types_supported=["authorization_code", "refresh_token", DEVICE_GRANT],
            )
            if self.kind in ("auth0", "oidc"):  # Auth0 (with DCR enabled) and Keycloak register clients (RFC 7591)
                self.issuer.metadata.update(registration_endpoint=self.url("/register"), response_types_supported=["code"],
                                            token_endpoint_auth_methods_supported=["none", "client_secret_post", "client_secret_basic"])
        return self

    def add_client(self, client_id: str, secret: str | None = None) -> None:
        self.clients[client_id] = secret
        if self.kind == "github" and secret is not None:
            self.fake.add_github_app(client_id, secret)

    def url(self, path: str) -> str:
        if self.kind == "github":  # GitHub's OAuth endpoints sit under /login on the web host
            path = {"/authorize": "/login/oauth/authorize", "/token": "/login/oauth/access_token", "/device/code": "/login/device/code",
                    "/device": "/login/device"}.get(path, path)
        return f"{self.fake.url}{self.prefix}{path}"

    def settings_env(self) -> dict[str, str]:
        """The MCP_HTTP_* overrides that point the server's login document at this fake."""
        if self.kind == "google":
            return {"MCP_HTTP_GOOGLE_AUTHORIZATION_URL": self.url("/authorize"), "MCP_HTTP_GOOGLE_TOKEN_URL": self.url("/token"),
                    "MCP_HTTP_GOOGLE_REVOCATION_URL": self.url("/revoke")}
        if self.kind == "github":
            return {"MCP_HTTP_GITHUB_WEB_URL": f"{self.fake.url}{self.prefix}"}
        return {}

    # ---- test controls --------------------------------------------------------------------
    def approve_device(self, user_code: str, allow: bool = True) -> None:
        with self._lock:
            for grant in self._devices.values():
                if grant.user_code == user_code:
                    grant.approved, grant.denied = allow, not allow
                    return
        raise KeyError(user_code)

    def expire_access_tokens(self) -> None:
        """Every expiring access token issued so far is past its expiry (as 8 hours passing would)."""
        with self._lock:
            issued = set(self.issued)
        for token, user in list(self.fake.github_tokens.items()):
            if token in issued and user.expires_at is not None:
                user.expires_at = 0.0

    def revoke_all(self) -> None:
        """Every refresh token issued so far stops working (the user removed the app's access)."""
        with self._lock:
            self._revoked_families.update(r.family for r in self._refresh.values())

    def issued_tokens(self) -> list[str]:
        """Every token value this server has issued (to check none leaks into logs or files)."""
        with self._lock:
            return list(self.issued)

    def issued_refresh_tokens(self) -> list[str]:
        with self._lock:
            return list(self._refresh)

    # ---- HTTP ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> Answer | None:
        base = urllib.parse.urlsplit(self.url("")).path
        if not path.startswith(base):
            return None
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()} if method == "POST" else {}
        params = {k: v[0] for k, v in query.items()}
        route = {
            ("GET", self.url("/authorize")): lambda: self._consent_page(params),
            ("POST", self.url("/authorize")): lambda: self._consent_answer(form),
            ("POST", self.url("/token")): lambda: self._token(form, headers),
            ("POST", self.url("/device/code")): lambda: self._device_code(form, headers),
            ("GET", self.url("/device")): lambda: self._device_page(params),
            ("POST", self.url("/device")): lambda: self._device_answer(form),
            ("POST", self.url("/revoke")): lambda: self._revoke(form),
            ("POST", self.url("/register")): lambda: self._register(body),
        }.get((method, f"{self.fake.url}{path}"))
        return route() if route else None

    def _client(self, form: dict[str, str], headers: dict[str, str], public_ok: bool = False) -> str | None:
        """The authenticated client id (secret checked for confidential clients unless public_ok), else None."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            client_id, secret = urllib.parse.unquote(user), urllib.parse.unquote(password)
        if client_id not in self.clients:
            return None
        expected = self.clients[client_id]
        if expected is not None and not public_ok and not (secret and secrets.compare_digest(secret, expected)):
            return None
        return client_id

    def _consent_page(self, params: dict[str, str]) -> Answer:
        problem = self._check_authorize(params)
        if problem:
            return 400, {}, _page("Sign-in error", f"<p id='error'>{html.escape(problem)}</p>")
        request_id = secrets.token_urlsafe(12)
        with self._lock:
            self._pending[request_id] = params
        scope = html.escape(params.get("scope", ""))
        form = (
            f"<p>{html.escape(params['client_id'])} asks for: <code>{scope}</code></p>"
            f"<p>Signed in as {html.escape(self.user.email)}</p>"
            f"<form method='post' action='{html.escape(self.url('/authorize'))}'>"
            f"<input type='hidden' name='request' value='{request_id}'>"
            "<button id='allow' name='decision' value='allow'>Allow</button> "
            "<button id='deny' name='decision' value='deny'>Deny</button></form>"
        )
        return 200, {"cache-control": "no-store"}, _page(f"Sign in to {self.kind}", form)

    def _check_authorize(self, params: dict[str, str]) -> str | None:
        if params.get("client_id") not in self.clients:
            return "unknown client_id"
        redirect = urllib.parse.urlsplit(params.get("redirect_uri", ""))
        if redirect.scheme != "http" or redirect.hostname != "127.0.0.1":
            return "redirect_uri must be a loopback http://127.0.0.1 URL"
        if params.get("response_type") != "code":
            return "response_type must be code"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE with S256 is required"
        return None

    def _consent_answer(self, form: dict[str, str]) -> Answer:
        with self._lock:
            params = self._pending.pop(form.get("request", ""), None)
        if params is None:
            return 400, {}, _page("Sign-in error", "<p>This sign-in request is unknown or was already answered.</p>")
        answer: dict[str, str] = {"state": params.get("state", "")}
        if form.get("decision") == "allow":
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = {**params, "issued": time.time()}
            answer["code"] = code
        else:
            answer.update(error="access_denied", error_description="the user denied access")
        return 302, {"location": f"{params['redirect_uri']}?{urllib.parse.urlencode(answer)}"}, b""

    def _token(self, form: dict[str, str], headers: dict[str, str]) -> Answer:
        status, extra, answer = self._token_answer(form, headers)
        if self.kind == "github" and status >= 400:
            # github.com answers every token-endpoint error with HTTP 200 and its own error names.
            grant = form.get("grant_type", "")
            error = answer["error"]
            if error == "invalid_grant":
                error = GITHUB_GRANT_ERRORS.get(grant, error)
            if error == "bad_refresh_token":  # github.com's one answer for unknown, used, revoked and expired ones
                answer = {**answer, "error_description": "The refresh token passed is incorrect or expired."}
            return 200, extra, {**answer, "error": GITHUB_ERRORS.get(error, error)}
        return status, extra, answer

    def _token_answer(self, form: dict[str, str], headers: dict[str, str]) -> Answer:
        grant = form.get("grant_type", "")
        self.requests[grant] += 1
        # GitHub's device flow takes the app's client id alone (the secret stays on the server), and a
        # GitHub App's device-flow client refreshes its user tokens the same way.
        client_id = self._client(form, headers, public_ok=self.kind == "github" and grant in (DEVICE_GRANT, "refresh_token"))
        if client_id is None:
            return _error(401, "invalid_client", "client authentication failed")
        if grant == "authorization_code":
            with self._lock:
                params = self._codes.pop(form.get("code", ""), None)  # one use only
            if params is None or params["client_id"] != client_id:
                return _error(400, "invalid_grant", "unknown, used or foreign authorization code")
            if form.get("redirect_uri") != params["redirect_uri"]:
                return _error(400, "invalid_grant", "redirect_uri differs from the authorization request")
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or not secrets.compare_digest(challenge, params["code_challenge"]):
                return _error(400, "invalid_grant", "PKCE verification failed")
            return self._issue(client_id, params.get("scope", ""), params.get("audience"), family=None)
        if grant == "refresh_token":
            with self._lock:
                record = self._refresh.get(form.get("refresh_token", ""))
                if record is None or record.client_id != client_id or record.family in self._revoked_families:
                    return _error(400, "invalid_grant", "unknown, expired or revoked refresh token")
                if record.used and self.kind == "github":  # GitHub: a replaced refresh token is simply invalid
                    return _error(400, "invalid_grant", "a replaced refresh token")
                if record.used:  # reuse of a rotated token: someone else holds the family, revoke it all
                    self._revoked_families.add(record.family)
                    return _error(400, "invalid_grant", "refresh token reuse detected; the whole grant is revoked")
                if self.rotate_refresh_tokens or self.kind == "github":
                    record.used = True
            return self._issue(client_id, record.scope, record.audience, family=record.family)
        if grant == DEVICE_GRANT:
            return self._device_token(client_id, form.get("device_code", ""))
        return _error(400, "unsupported_grant_type", grant)

    def _issue(self, client_id: str, scope: str, audience: str | None, family: str | None) -> Answer:
        user = self.user
        answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": self.access_lifetime, "scope": scope}
        if self.kind == "github":
            return self._issue_github(client_id, scope, family)
        assert self.issuer is not None
        if self.kind == "google":
            access = f"ya29.{secrets.token_urlsafe(24)}"
            self.fake.add_google_token(access, sub=user.sub, aud=client_id, email=user.email, name=user.name)
            answer["access_token"] = access
            answer["id_token"] = self.issuer.mint(client_id, sub=user.sub, lifetime=self.access_lifetime, azp=client_id,
                                                  email=user.email, email_verified=user.email_verified, name=user.name)
        else:
            aud = audience or self.audience or client_id
            answer["access_token"] = self.issuer.mint(aud, sub=user.sub, lifetime=self.access_lifetime, scope=scope, azp=client_id,
                                                      email=user.email, email_verified=user.email_verified, name=user.name)
            if "openid" in scope.split():
                answer["id_token"] = self.issuer.mint(client_id, sub=user.sub, lifetime=self.access_lifetime, email=user.email)
        # Google keeps one refresh token (issued on the first consent); the others issue a new one each time.
        if (family is None or self.rotate_refresh_tokens) and (self.kind == "google" or "offline_access" in scope.split() or self.kind == "oidc"):
            refresh = f"rt-{secrets.token_urlsafe(24)}"
            with self._lock:
                self._refresh[refresh] = _Refresh(client_id, scope, audience, family or secrets.token_hex(8))
            answer["refresh_token"] = refresh
        self._record(*(answer[k] for k in ("access_token", "id_token", "refresh_token") if k in answer))
        return 200, {"cache-control": "no-store"}, answer

    def _issue_github(self, client_id: str, scope: str, family: str | None) -> Answer:
        """A classic OAuth app's `gho_` (never expires, no refresh token), or a GitHub App's `ghu_` + `ghr_` pair."""
        user = self.user
        expiring = self.github_app_tokens or family is not None  # a refresh keeps the grant's kind
        token = f"{'ghu' if expiring else 'gho'}_{secrets.token_hex(18)}"
        self.fake.add_github_token(token, FakeGitHubUser(
            id=user.github_id, login=user.github_login, name=user.name, app_client_id=client_id,
            emails=[{"email": user.email, "primary": True, "verified": user.email_verified}],
            expires_at=time.time() + GITHUB_USER_TOKEN_LIFETIME if expiring else None,
        ))
        answer: dict[str, Any] = {"access_token": token, "token_type": "bearer", "scope": scope}
        if expiring:
            refresh = f"ghr_{secrets.token_hex(38)}"
            with self._lock:
                self._refresh[refresh] = _Refresh(client_id, scope, None, family or secrets.token_hex(8))
            answer.update(expires_in=GITHUB_USER_TOKEN_LIFETIME, refresh_token=refresh, refresh_token_expires_in=GITHUB_REFRESH_TOKEN_LIFETIME)
        self._record(*(answer[k] for k in ("access_token", "refresh_token") if k in answer))
        return 200, {}, answer

    def _record(self, *tokens: str) -> None:
        with self._lock:
            self.issued.extend(tokens)

    def _device_code(self, form: dict[str, str], headers: dict[str, str]) -> Answer:
        client_id = self._client(form, headers, public_ok=self.kind == "github")
        if client_id is None:
            return _error(401, "invalid_client", "unknown client_id")
        device_code = secrets.token_urlsafe(24)
        user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
        with self._lock:
            self._devices[device_code] = _Device(client_id, form.get("scope", ""), form.get("audience"), user_code, time.time() + 600)
        return 200, {}, {
            "device_code": device_code, "user_code": user_code, "verification_uri": self.url("/device"),
            "verification_uri_complete": f"{self.url('/device')}?user_code={user_code}", "expires_in": 600, "interval": self.device_interval,
        }

    def _device_token(self, client_id: str, device_code: str) -> Answer:
        with self._lock:
            grant = self._devices.get(device_code)
            if grant is None or grant.client_id != client_id:
                return _error(400, "invalid_grant", "unknown device code")
            now = time.monotonic()
            too_fast = grant.last_poll and now - grant.last_poll < self.device_interval * 0.5
            grant.last_poll = now
            if time.time() > grant.expires_at:
                return _error(400, "expired_token", "the device code expired")
            if grant.denied:
                return _error(400, "access_denied", "the user denied access")
            if not grant.approved:
                # GitHub answers these with HTTP 200; the RFC (and the others) with 400.
                status = 200 if self.kind == "github" else 400
                return _error(status, "slow_down" if too_fast else "authorization_pending", "waiting for the user")
            del self._devices[device_code]
        return self._issue(client_id, grant.scope, grant.audience, family=None)

    def _device_page(self, params: dict[str, str]) -> Answer:
        code = html.escape(params.get("user_code", ""))
        form = (f"<form method='post' action='{html.escape(self.url('/device'))}'><input name='user_code' value='{code}'>"
                "<button id='allow' name='decision' value='allow'>Allow</button></form>")
        return 200, {}, _page("Enter the code", form)

    def _device_answer(self, form: dict[str, str]) -> Answer:
        try:
            self.approve_device(form.get("user_code", ""), allow=form.get("decision") == "allow")
        except KeyError:
            return 400, {}, _page("Unknown code", "<p>That code is unknown or expired.</p>")
        return 200, {}, _page("Done", "<p>You can return to your device.</p>")

    def _register(self, body: bytes) -> Answer:
        """Dynamic client registration (RFC 7591): a public client for `none`, else one with a secret."""
        if self.kind not in ("auth0", "oidc"):
            return _error(404, "not_found", "this provider has no registration endpoint")
        try:
            metadata = json.loads(body)
        except ValueError:
            return _error(400, "invalid_client_metadata", "the body must be a JSON object")
        if not isinstance(metadata, dict):
            return _error(400, "invalid_client_metadata", "the body must be a JSON object")
        redirects = metadata.get("redirect_uris")
        if not isinstance(redirects, list) or not redirects or not all(isinstance(r, str) for r in redirects):
            return _error(400, "invalid_redirect_uri", "redirect_uris must be a non-empty list of URLs")
        client_id = f"dcr-{secrets.token_hex(8)}"
        method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        secret = None if method == "none" else secrets.token_urlsafe(24)
        self.add_client(client_id, secret)
        self.requests["register"] += 1
        answer = {**metadata, "client_id": client_id, "client_id_issued_at": int(time.time()), "token_endpoint_auth_method": method}
        if secret is not None:
            answer.update(client_secret=secret, client_secret_expires_at=0)
        return 201, {"cache-control": "no-store"}, answer

    def _revoke(self, form: dict[str, str]) -> Answer:
        with self._lock:
            record = self._refresh.get(form.get("token", ""))
            if record is not None:
                self._revoked_families.add(record.family)
        return 200, {}, {}  # RFC 7009: the same answer for unknown tokens


def _error(status: int, error: str, description: str) -> Answer:
    return status, {"cache-control": "no-store"}, {"error": error, "error_description": description}


def _page(title: str, content: str) -> bytes:
    return f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{content}</body></html>".encode()
