"""`mcp-pa login` / `logout`, and the token refresh `connect --login` uses.

The server publishes its login clients at `<base>/.well-known/mcp-pa-login`; everything a
provider needs (endpoints or issuer, client id, scopes, extra authorization parameters, which
token is the bearer) comes from there, so this client has no per-provider code. The grants are
Authlib's OAuth 2 client: authorization code + PKCE S256 with a loopback redirect on 127.0.0.1
(RFC 8252), or the device authorization grant (RFC 8628). Tokens go to `mcp_pa.tokens`; only
fingerprints ever reach a log or the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import html
import json
import logging
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
import warnings
import webbrowser
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable

import httpx

from mcp_pa.core import contract, logs
from mcp_pa.core.net import is_loopback_url
from mcp_pa.tokens import StoredLogin, TokenStore

log = logging.getLogger("mcp_pa.login")

LOGIN_PATH = contract.LOGIN_PATH
# A fixed first choice, so providers that pin the whole redirect URI (port included) can have it
# registered; when it is busy any free port is used (RFC 8252 §7.3: loopback ports may vary).
PREFERRED_LOOPBACK_PORT = 33418
CALLBACK_PATH = "/callback"
LOOPBACK_TIMEOUT = 300.0
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 15.0
REFRESH_ATTEMPTS = 3
SETTINGS_TO_SET = (
    "MCP_HTTP_GOOGLE_LOGIN_CLIENT_ID and MCP_HTTP_GOOGLE_LOGIN_CLIENT_SECRET, MCP_HTTP_AUTH0_LOGIN_CLIENT_ID, "
    'MCP_HTTP_GITHUB_CLIENT_ID, or "login_client_id" in an MCP_HTTP_OIDC_PROVIDERS entry'
)


class LoginError(Exception):
    """A sign-in that cannot go on; the message is the one line the user sees."""


class RefreshRefused(LoginError):
    """The provider refused the refresh token (revoked, expired, reused): only a new login helps."""


class RefreshUnavailable(LoginError):
    """The provider could not be reached to refresh (network, 5xx), even after retries."""


@dataclass
class Provider:
    """One entry of the server's login document, with its endpoints resolved."""

    name: str
    client_id: str
    flows: list[str]
    scopes: list[str] = field(default_factory=list)
    client_secret: str | None = None
    issuer: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    extra_params: dict[str, str] = field(default_factory=dict)
    bearer: str = "access_token"

    @classmethod
    def from_document(cls, entry: dict[str, Any]) -> "Provider":
        if not isinstance(entry.get("name"), str) or not isinstance(entry.get("client_id"), str):
            raise LoginError(f"the server's login document has an entry without name or client_id: {sorted(entry)}")
        known = {k: v for k, v in entry.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# --- URLs and the login document ---------------------------------------------------------------


def server_urls(url: str) -> tuple[str, str]:
    """(base URL, MCP URL) from either one: `https://h/mcp` or `https://h` → `https://h`, `https://h/mcp`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoginError(f"{url!r} is not an http(s) URL; pass the server's MCP URL, e.g. https://mcp.example.com/mcp")
    if parts.scheme == "http" and not is_loopback_url(url):
        raise LoginError(f"{url!r}: refusing to sign in over plain http to a remote host; use https")
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    return base, f"{base}{path}" if path else f"{base}{contract.MCP_PATH}"


def build_verify(ca: str | None) -> ssl.SSLContext | bool:
    if ca is None:
        return True
    try:
        return ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise LoginError(f"--ca {ca}: not a readable PEM certificate bundle ({exc})") from exc


def _get_json(client: httpx.Client, url: str, what: str) -> dict[str, Any]:
    try:
        response = client.get(url, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {what} at {url}: {exc.__class__.__name__}: {exc}") from exc
    if response.status_code != 200:
        raise LoginError(f"{what} at {url} answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError as exc:
        raise LoginError(f"{what} at {url} did not answer JSON") from exc
    if not isinstance(data, dict):
        raise LoginError(f"{what} at {url} did not answer a JSON object")
    return data


def fetch_providers(client: httpx.Client, base: str) -> list[Provider]:
    """The server's login clients, each with its endpoints (OIDC discovery where only an issuer is given)."""
    url = f"{base}{LOGIN_PATH}"
    try:
        response = client.get(url, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach the server at {base}: {exc.__class__.__name__}: {exc}") from exc
    if response.status_code == 404:
        raise LoginError(f"the server at {base} publishes no login document ({LOGIN_PATH}): it does not support `mcp-pa login`")
    if response.status_code != 200:
        raise LoginError(f"the server at {base} answered HTTP {response.status_code} for {LOGIN_PATH}")
    try:
        entries = response.json().get("providers")
    except (ValueError, AttributeError) as exc:
        raise LoginError(f"the server at {base} answered something other than a login document at {LOGIN_PATH}") from exc
    if not isinstance(entries, list) or not entries:
        raise LoginError(f"the server at {base} has no login clients; its operator sets {SETTINGS_TO_SET}")
    return [Provider.from_document(e) for e in entries if isinstance(e, dict)]


def choose(providers: list[Provider], name: str | None, base: str) -> Provider:
    names = ", ".join(p.name for p in providers)
    if name is None:
        if len(providers) == 1:
            return providers[0]
        raise LoginError(f"the server at {base} accepts several providers; choose one with --provider ({names})")
    for provider in providers:
        if provider.name == name:
            return provider
    raise LoginError(f"--provider {name}: the server at {base} has no login client for it (it has: {names})")


def resolve_endpoints(client: httpx.Client, provider: Provider) -> Provider:
    """Fill missing endpoints from the issuer's OIDC discovery document."""
    if provider.token_endpoint and (provider.authorization_endpoint or provider.device_authorization_endpoint):
        return provider
    if not provider.issuer:
        raise LoginError(f"the server's login entry for {provider.name} names neither an issuer nor its endpoints")
    meta = _get_json(client, f"{provider.issuer.rstrip('/')}/.well-known/openid-configuration", f"{provider.name}'s discovery document")
    for key in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint", "revocation_endpoint"):
        if getattr(provider, key) is None and isinstance(meta.get(key), str):
            setattr(provider, key, meta[key])
    if not provider.token_endpoint:
        raise LoginError(f"{provider.name}'s discovery document at {provider.issuer} has no token_endpoint")
    if provider.device_authorization_endpoint is None and "device" in provider.flows:
        provider.flows = [f for f in provider.flows if f != "device"]
    return provider


# --- the grants ----------------------------------------------------------------------------------


def _oauth_client(provider: Provider, verify: ssl.SSLContext | bool, **kwargs: Any) -> Any:
    """Authlib's OAuth 2 client for provider (httpx underneath); imported here, not at `connect` start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Authlib prefers httpx2 and warns when it falls back to httpx
        from authlib.integrations.httpx_client import OAuth2Client
    return OAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        token_endpoint_auth_method="client_secret_post" if provider.client_secret else "none",
        scope=" ".join(provider.scopes),
        verify=verify,
        timeout=HTTP_TIMEOUT,
        **kwargs,
    )


@dataclass
class _Callback:
    """What the browser brought back to the loopback listener."""

    expected_state: str
    done: threading.Event = field(default_factory=threading.Event)
    params: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


def _callback_handler(callback: _Callback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            if url.path != CALLBACK_PATH:
                self._page(404, "Not the sign-in callback.")
                return
            params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            if not secrets.compare_digest(params.get("state", ""), callback.expected_state):
                callback.problem = "the browser came back with a state that does not match this sign-in: refused (a stale tab or a forged redirect)"
                self._page(400, "Sign-in refused: the state does not match. Start again with mcp-pa login.")
            elif "error" in params:
                said = params.get("error_description") or params["error"]
                callback.problem = f"the provider refused the sign-in: {said}"
                self._page(400, f"Sign-in refused by the provider: {said}")
            elif not params.get("code"):
                callback.problem = "the browser came back without an authorization code"
                self._page(400, "Sign-in failed: no authorization code.")
            else:
                callback.params = params
                self._page(200, "Signed in. You can close this tab and return to the terminal.")
            callback.done.set()

        def _page(self, status: int, text: str) -> None:
            body = f"<!doctype html><title>mcp-pa login</title><p>{html.escape(text)}</p>".encode()
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.send_header("cache-control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the query string holds the code: never log it

    return Handler


def _loopback_server(handler: type[BaseHTTPRequestHandler]) -> HTTPServer:
    for port in (PREFERRED_LOOPBACK_PORT, 0):
        try:
            return HTTPServer(("127.0.0.1", port), handler)
        except OSError:
            log.info("loopback port busy; trying another", extra={"port": port})
    raise LoginError("cannot listen on any loopback port for the sign-in redirect")


def loopback_login(provider: Provider, verify: ssl.SSLContext | bool, open_browser: bool, timeout: float) -> dict[str, Any]:
    """Authorization code + PKCE S256 with the redirect to a one-shot listener on 127.0.0.1."""
    if not provider.authorization_endpoint:
        raise LoginError(f"{provider.name} publishes no authorization endpoint; try --device")
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    callback = _Callback(state)
    server = _loopback_server(_callback_handler(callback))
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}"
    thread = threading.Thread(target=server.serve_forever, name="login-callback", daemon=True)
    thread.start()
    try:
        with _oauth_client(provider, verify, redirect_uri=redirect_uri, code_challenge_method="S256") as client:
            url, _ = client.create_authorization_url(
                provider.authorization_endpoint, state=state, code_verifier=verifier, **provider.extra_params
            )
            if open_browser:
                print(f"Opening your browser to sign in with {provider.name}. If it does not open, visit:", file=sys.stderr)
            else:
                print(f"Visit this URL to sign in with {provider.name}:", file=sys.stderr)
            print(url, file=sys.stderr, flush=True)
            if open_browser:
                with contextlib.suppress(webbrowser.Error):
                    webbrowser.open(url)
            if not callback.done.wait(timeout):
                raise LoginError(
                    f"no answer from the browser within {timeout:.0f} s; on a machine without a browser run "
                    f"`mcp-pa login URL --provider {provider.name} --device`"
                    + ("" if "device" in provider.flows else f" (if {provider.name} offers it)")
                )
            if callback.problem:
                raise LoginError(callback.problem)
            return _fetch(client, provider.token_endpoint or "", grant_type="authorization_code",
                          code=callback.params["code"], code_verifier=verifier)
    finally:
        server.shutdown()
        server.server_close()


def device_login(provider: Provider, verify: ssl.SSLContext | bool, timeout: float, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The device authorization grant: show a code, poll the token endpoint until approved."""
    if not provider.device_authorization_endpoint:
        raise LoginError(f"{provider.name} offers no device sign-in here; run `mcp-pa login` without --device")
    with _oauth_client(provider, verify) as client:
        try:
            # Plain httpx: Authlib has no device-authorization request, and its client would want a token here.
            response = httpx.post(
                provider.device_authorization_endpoint,
                data={"client_id": provider.client_id, "scope": " ".join(provider.scopes), **provider.extra_params},
                headers={"accept": "application/json"},
                verify=verify,
                timeout=HTTP_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise LoginError(f"cannot reach {provider.name} at {provider.device_authorization_endpoint}: {exc}") from exc
        grant = _json_or_error(response, provider.name, "device authorization")
        interval = float(grant.get("interval") or 5)
        deadline = time.monotonic() + min(float(grant.get("expires_in") or timeout), timeout)
        where = grant.get("verification_uri_complete") or grant.get("verification_uri")
        print(f"To sign in with {provider.name}, visit {grant.get('verification_uri')} and enter the code: {grant.get('user_code')}", file=sys.stderr)
        if where != grant.get("verification_uri"):
            print(f"(or open {where})", file=sys.stderr)
        sys.stderr.flush()
        while time.monotonic() < deadline:
            sleep(interval)
            try:
                return _fetch(client, provider.token_endpoint or "", grant_type=DEVICE_GRANT, device_code=grant["device_code"])
            except _Pending as pending:
                if pending.error == "slow_down":
                    interval += 5  # RFC 8628 §3.5
        raise LoginError(f"the code was not approved within {timeout:.0f} s; run `mcp-pa login` again")


class _Pending(Exception):
    def __init__(self, error: str) -> None:
        self.error = error


def _json_or_error(response: Any, name: str, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400 or not isinstance(data, dict) or "error" in data:
        said = (data or {}).get("error_description") or (data or {}).get("error") if isinstance(data, dict) else None
        raise LoginError(f"{name} refused the {what} request (HTTP {response.status_code}{': ' + said if said else ''})")
    return data


def _fetch(client: Any, token_endpoint: str, **kwargs: Any) -> dict[str, Any]:
    from authlib.integrations.base_client import OAuthError

    try:
        token = client.fetch_token(token_endpoint, **kwargs)
    except OAuthError as exc:
        if exc.error in ("authorization_pending", "slow_down"):
            raise _Pending(exc.error) from None
        raise LoginError(f"the provider refused the token request: {exc.description or exc.error}") from None
    except Exception as exc:  # transport errors of httpx or httpx2
        raise LoginError(f"cannot reach the provider's token endpoint {token_endpoint}: {exc}") from exc
    return dict(token)


# --- tokens → a stored login ---------------------------------------------------------------------


def jwt_expiry(token: str) -> float | None:
    """The `exp` of a JWT, read without verifying (the server verifies; this only schedules refresh)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def bearer_of(token: dict[str, Any], kind: str) -> tuple[str, float | None]:
    bearer = token.get(kind)
    if not isinstance(bearer, str) or not bearer:
        raise LoginError(f"the provider's token response has no {kind}")
    expires_at = token.get("expires_at")
    if kind == "id_token" or expires_at is None:
        expires_at = jwt_expiry(bearer) or expires_at
    return bearer, float(expires_at) if expires_at else None


def stored_login(base: str, provider: Provider, token: dict[str, Any], previous_refresh: str | None = None) -> StoredLogin:
    bearer, expires_at = bearer_of(token, provider.bearer)
    return StoredLogin(
        server=base,
        provider=provider.name,
        bearer=bearer,
        expires_at=expires_at,
        bearer_kind=provider.bearer,
        refresh_token=token.get("refresh_token") or previous_refresh,
        token_endpoint=provider.token_endpoint,
        revocation_endpoint=provider.revocation_endpoint,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=str(token.get("scope") or " ".join(provider.scopes)),
    )


# --- refresh (used by `connect --login`) ----------------------------------------------------------


async def refresh(login: StoredLogin, verify: ssl.SSLContext | bool, backoff: float = 0.5) -> StoredLogin:
    """A fresh bearer from the refresh token; RefreshRefused or RefreshUnavailable when it cannot be had."""
    if not login.refresh_token or not login.token_endpoint:
        raise RefreshRefused(f"the {login.provider} sign-in has no refresh token")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from authlib.integrations.base_client import OAuthError
        from authlib.integrations.httpx_client import AsyncOAuth2Client
    last: Exception | None = None
    for attempt in range(REFRESH_ATTEMPTS):
        async with AsyncOAuth2Client(
            client_id=login.client_id,
            client_secret=login.client_secret,
            token_endpoint_auth_method="client_secret_post" if login.client_secret else "none",
            verify=verify,
            timeout=HTTP_TIMEOUT,
        ) as client:
            try:
                # Authlib reads `error` from the body whatever the status: GitHub refuses a refresh
                # (`bad_refresh_token`) with HTTP 200, and that must not pass for a new token.
                token = await client.refresh_token(login.token_endpoint, refresh_token=login.refresh_token)
            except OAuthError as exc:
                raise RefreshRefused(f"{login.provider} refused the refresh token ({exc.description or exc.error})") from None
            except Exception as exc:  # network failures and 5xx pages that are not OAuth errors
                last = exc
                final = attempt + 1 == REFRESH_ATTEMPTS
                log.warning("refresh failed" if final else "refresh failed; retrying",
                            extra={"provider": login.provider, "attempt": attempt + 1, "error": _failure(exc)})
                if not final:  # no wait after the last attempt: the caller is told at once
                    await asyncio.sleep(backoff * 2**attempt)
                continue
        try:
            bearer, expires_at = bearer_of(dict(token), login.bearer_kind)
        except LoginError as exc:  # an answer without the bearer is no refresh: only a new login gets one
            raise RefreshRefused(f"{login.provider} answered the refresh without a token ({exc})") from None
        rotated = token.get("refresh_token") or login.refresh_token
        log.info(
            "token refreshed",
            extra={"provider": login.provider, "bearer": logs.fingerprint(bearer), "rotated": rotated != login.refresh_token},
        )
        return StoredLogin(**{**login.__dict__, "bearer": bearer, "expires_at": expires_at, "refresh_token": rotated})
    raise RefreshUnavailable(
        f"Could not reach {login.provider} to refresh the sign-in: its token endpoint {login.token_endpoint} "
        f"failed {REFRESH_ATTEMPTS} times ({_failure(last)})"
    )


def _failure(exc: Exception | None) -> str:
    """One short line for a failed token request: the HTTP status, else the network error."""
    # Authlib's client may be built on httpx or its fork httpx2: recognise the status error by its shape.
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- whoami --------------------------------------------------------------------------------------


def whoami(client: httpx.Client, mcp_url: str, bearer: str) -> dict[str, Any]:
    """The server's `whoami` tool, called with the new bearer: proof the sign-in works end to end."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    headers = {
        contract.HEADER_AUTHORIZATION: f"Bearer {bearer}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": "2025-11-25",
        contract.HEADER_MCP_METHOD: "tools/call",
        contract.HEADER_MCP_NAME: "whoami",
    }
    try:
        response = client.post(mcp_url, json=message, headers=headers)
    except httpx.HTTPError as exc:
        raise LoginError(f"signed in, but cannot reach {mcp_url} to check: {exc}") from exc
    if response.status_code != 200:
        said = ""
        with contextlib.suppress(ValueError, AttributeError):
            said = ": " + str(response.json().get("error_description") or "")
        raise LoginError(f"signed in with the provider, but the server refused the token (HTTP {response.status_code}{said})")
    body = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        body = next((line[5:].strip() for line in body.splitlines() if line.startswith("data:")), "{}")
    result = json.loads(body).get("result") or {}
    content = result.get("structuredContent")
    if not isinstance(content, dict):
        raise LoginError("signed in, but the server's whoami answered no identity")
    return content


def describe_identity(me: dict[str, Any]) -> str:
    who = me.get("name") or me.get("email") or me.get("user_id")
    email = f" <{me['email']}>" if me.get("email") and me.get("email") != who else ""
    perms = ",".join(me.get("permissions") or []) or "none"
    return f"{who}{email} (user {me.get('user_id')}, tenant {me.get('tenant_id')}, permissions {perms})"


# --- commands ------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    """`mcp-pa login URL [--provider NAME] [--device] [--no-browser] [--ca FILE]`."""
    logs.configure("WARNING")
    try:
        base, mcp_url = server_urls(args.url)
        verify = build_verify(args.ca)
        with httpx.Client(verify=verify, timeout=HTTP_TIMEOUT, follow_redirects=False) as http:
            provider = resolve_endpoints(http, choose(fetch_providers(http, base), args.provider, base))
            device = args.device or "loopback" not in provider.flows
            if device:
                token = device_login(provider, verify, args.timeout)
            else:
                token = loopback_login(provider, verify, open_browser=not args.no_browser, timeout=args.timeout)
            login = stored_login(base, provider, token)
            me = whoami(http, mcp_url, login.bearer)
        store = TokenStore()
        store.put(login)
    except LoginError as exc:
        print(f"mcp-pa login: {exc}", file=sys.stderr)
        return 1
    expiry = time.strftime("%H:%M:%S", time.localtime(login.expires_at)) if login.expires_at else "no expiry"
    print(f"Signed in to {base} with {provider.name} as {describe_identity(me)}.")
    print(f"Token {logs.fingerprint(login.bearer)} (valid until {expiry}; "
          f"{'refreshable' if login.refresh_token else 'not refreshable'}) stored in {store.where}.")
    return 0


def logout(args: argparse.Namespace) -> int:
    """`mcp-pa logout URL [--provider NAME]`: forget the stored tokens and revoke them where possible."""
    logs.configure("WARNING")
    try:
        base, _ = server_urls(args.url)
        verify = build_verify(args.ca)
    except LoginError as exc:
        print(f"mcp-pa logout: {exc}", file=sys.stderr)
        return 1
    store = TokenStore()
    removed = store.delete(base, args.provider)
    if not removed:
        which = f" with {args.provider}" if args.provider else ""
        print(f"mcp-pa logout: not signed in to {base}{which}", file=sys.stderr)
        return 1
    for login in removed:
        print(f"Signed out of {base} ({login.provider}): {_revoke(login, verify)}")
    return 0


def _revoke(login: StoredLogin, verify: ssl.SSLContext | bool) -> str:
    if not login.revocation_endpoint:
        return f"tokens forgotten; {login.provider} offers no revocation here, so revoke the app's access in your account settings"
    token, hint = (login.refresh_token, "refresh_token") if login.refresh_token else (login.bearer, "access_token")
    provider = Provider(name=login.provider, client_id=login.client_id, flows=[], client_secret=login.client_secret)
    try:
        with _oauth_client(provider, verify) as client:
            response = client.revoke_token(login.revocation_endpoint, token=token, token_type_hint=hint)
    except Exception as exc:
        return f"tokens forgotten, but revoking them failed ({type(exc).__name__}); revoke the app's access in your account settings"
    if response.status_code >= 400:
        return f"tokens forgotten, but {login.provider} refused the revocation (HTTP {response.status_code})"
    return "tokens forgotten and revoked"

