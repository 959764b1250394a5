"""`mcp-pa connect`: a stdio ↔ Streamable HTTP bridge for MCP clients that only launch local commands.

Claude Desktop's `command` servers and older tools speak newline-delimited JSON-RPC on a child
process's stdin/stdout. The bridge POSTs each message to the remote `/mcp` endpoint through
Envoy with the credential attached, and writes the answers (a JSON body or SSE `data:` events)
back one per line. HTTP statuses the front door answers by itself (401, 403, 429, 503) become
JSON-RPC errors that tell the user what to do. stdout is the protocol channel: nothing but
JSON-RPC is ever written there, and the credential is never written anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import logging
import os
import re
import shlex
import ssl
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator

import httpx

# The JSON-RPC codes for front-door statuses come from the decision table (stdlib only: quick to import).
from mcp_pa.core import contract, decisions, logs
from mcp_pa.core.decisions import FORBIDDEN as FORBIDDEN
from mcp_pa.core.decisions import INTERNAL_ERROR as INTERNAL_ERROR
from mcp_pa.core.decisions import RATE_LIMITED as RATE_LIMITED
from mcp_pa.core.decisions import UNAUTHORIZED as UNAUTHORIZED
from mcp_pa.core.decisions import UNAVAILABLE as UNAVAILABLE
from mcp_pa.core.net import is_loopback_url

log = logging.getLogger("mcp_pa.connect")

ACCEPT = "application/json, text/event-stream"

# MCP wire names, written here instead of imported: importing anything under `mcp` loads the
# whole SDK (0.7 s of a 1 s start), and Claude Desktop starts a bridge for every session.
# tests/clients/test_bridge.py pins each one to the installed SDK's value.
MCP_SESSION_ID_HEADER = "mcp-session-id"
MCP_PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
MODERN_PROTOCOL_VERSIONS = ("2026-07-28",)  # the eras with a per-request `_meta` envelope
NAME_BEARING_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}  # → Mcp-Name
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
CONNECTION_CLOSED = -32000
_HEADER_SAFE = re.compile(r"^[\x20-\x7E]*$")
_B64_SENTINEL = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")

TOKEN_COMMAND_TIMEOUT = 60.0
HTTP_TIMEOUT = httpx.Timeout(30.0, read=300.0)  # tool calls and SSE streams may be slow


class BridgeError(Exception):
    """A failure that reaches the client as one JSON-RPC error (code, readable message, data)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


# --- credentials ---------------------------------------------------------------------------


class Credential:
    """How the bridge authenticates; the base sends nothing, and the server's 401 says what to pass."""

    refreshable = False

    async def headers(self) -> dict[str, str]:
        return {}

    async def refresh(self, used: dict[str, str]) -> None:
        """Get a fresh credential after `used` was refused (only the token command can)."""

    def describe(self) -> str:
        return "no credential"

    def unauthorized_hint(self) -> str:
        return "This server needs a credential: start the bridge with --api-key-env NAME or --token-command CMD."


class ApiKeyCredential(Credential):
    """An API key sent as `x-api-key` on every request."""

    def __init__(self, env_name: str, key: str) -> None:
        self._env_name = env_name
        self._key = key

    async def headers(self) -> dict[str, str]:
        return {contract.HEADER_API_KEY: self._key}

    def describe(self) -> str:
        return f"API key from ${self._env_name} (fingerprint {logs.fingerprint(self._key)})"

    def unauthorized_hint(self) -> str:
        return f"Check that ${self._env_name} holds a current API key for this server (not revoked or expired)."


class TokenCommandCredential(Credential):
    """A bearer token printed by a command; the command runs again when the server refuses it."""

    refreshable = True

    def __init__(self, command: str) -> None:
        try:
            self._argv = shlex.split(command)
        except ValueError as exc:  # unbalanced quotes
            raise ValueError(f"--token-command {command!r}: {exc}") from exc
        if not self._argv:
            raise ValueError("--token-command is empty")
        self._token: str | None = None
        self._lock = asyncio.Lock()  # concurrent 401s share one re-run of the command

    async def headers(self) -> dict[str, str]:
        async with self._lock:
            if self._token is None:
                self._token = await self._run()
            return {contract.HEADER_AUTHORIZATION: f"Bearer {self._token}"}

    async def refresh(self, used: dict[str, str]) -> None:
        async with self._lock:
            if self._token is not None and used.get(contract.HEADER_AUTHORIZATION) == f"Bearer {self._token}":
                self._token = await self._run()

    async def _run(self) -> str:
        name = self._argv[0]
        try:
            # stdin is the protocol channel, so the command gets /dev/null; its stderr is ours
            # (a log, never the protocol), so prompts and errors stay visible to the user.
            proc = await asyncio.create_subprocess_exec(
                *self._argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            raise BridgeError(UNAUTHORIZED, f"Cannot run the token command {name!r}: {exc.strerror or exc}.") from exc
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), TOKEN_COMMAND_TIMEOUT)
        except asyncio.TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise BridgeError(
                UNAUTHORIZED, f"The token command {name!r} did not finish within {TOKEN_COMMAND_TIMEOUT:.0f} s."
            ) from exc
        if proc.returncode != 0:
            raise BridgeError(
                UNAUTHORIZED,
                f"The token command {name!r} failed with exit status {proc.returncode}; run it in a terminal to see why.",
            )
        token = out.decode("utf-8", "replace").strip()
        if not token or any(c.isspace() for c in token):
            raise BridgeError(
                UNAUTHORIZED, f"The token command {name!r} must print exactly one token (no spaces), and printed something else."
            )
        log.info("token command produced a token", extra={"token": logs.fingerprint(token)})
        return token

    def describe(self) -> str:
        return f"bearer token from the command {self._argv[0]!r}"

    def unauthorized_hint(self) -> str:
        return (
            f"The token from {self._argv[0]!r} was refused even after running the command again; "
            "check that it prints a current token issued for this server."
        )


class LoginCredential(Credential):
    """The bearer `mcp-pa login` stored, refreshed before it expires and once after a 401.

    One asyncio lock makes concurrent requests share one refresh. The store is re-read before
    refreshing, so a bridge of another client that already rotated the refresh token is
    followed instead of replaying a used one (which providers with reuse detection punish by
    revoking the whole family).
    """

    refreshable = True
    REFRESH_AHEAD = 60.0  # seconds before expiry; also covers the server's clock being a little ahead

    def __init__(self, url: str, provider: str | None, verify: ssl.SSLContext | bool, store: Any = None) -> None:
        from mcp_pa import tokens

        self._base = f"{urllib.parse.urlsplit(url).scheme}://{urllib.parse.urlsplit(url).netloc}"
        self._provider = provider
        self._verify = verify
        self._store = store or tokens.TokenStore()
        self._login = self._store.get(self._base, provider)
        self._lock = asyncio.Lock()
        self._refused: str | None = None  # a refresh token the provider refused: not offered again
        self._refused_why = ""  # the provider's reason, repeated to every later request (clients may show only the last)

    def _relogin(self, why: str) -> BridgeError:
        flag = f" --provider {self._provider}" if self._provider else ""
        return BridgeError(UNAUTHORIZED, f"{why}; run `mcp-pa login {self._base}{flag}` in a terminal, then retry.")

    async def headers(self) -> dict[str, str]:
        async with self._lock:
            if self._login is None:
                raise self._relogin(f"Not signed in to {self._base}")
            if self._login.expires_within(self.REFRESH_AHEAD) and self._login.refresh_token:
                await self._refresh_locked()
            assert self._login is not None
            return {contract.HEADER_AUTHORIZATION: f"Bearer {self._login.bearer}"}

    async def refresh(self, used: dict[str, str]) -> None:
        async with self._lock:
            if self._login is not None and used.get(contract.HEADER_AUTHORIZATION) == f"Bearer {self._login.bearer}":
                await self._refresh_locked()

    async def _refresh_locked(self) -> None:
        from mcp_pa import login as login_flow

        assert self._login is not None
        stored = self._store.get(self._base, self._login.provider)
        if stored is not None and stored.bearer != self._login.bearer and not stored.expires_within(self.REFRESH_AHEAD):
            self._login = stored  # another process refreshed (and maybe rotated) already
            return
        if stored is not None:
            self._login = stored
        if not self._login.refresh_token:
            raise self._relogin(f"The {self._login.provider} sign-in for {self._base} has expired and cannot be refreshed")
        if self._login.refresh_token == self._refused:
            raise self._relogin(f"The sign-in to {self._base} has expired or was revoked{self._refused_why}")
        try:
            fresh = await login_flow.refresh(self._login, self._verify)
        except login_flow.RefreshRefused as exc:
            self._refused, self._refused_why = self._login.refresh_token, f": {exc}"
            raise self._relogin(f"The sign-in to {self._base} has expired or was revoked: {exc}") from None
        except login_flow.RefreshUnavailable as exc:
            raise BridgeError(UNAVAILABLE, f"{exc}. Check the network and try again; the bridge refreshes on the next request (no new login needed).") from None
        self._store.put(fresh)  # the rotated refresh token replaces the used one atomically
        self._login = fresh

    def describe(self) -> str:
        if self._login is None:
            return f"no stored login for {self._base}"
        return f"login {self._login.provider} at {self._base} (token {logs.fingerprint(self._login.bearer)})"

    def unauthorized_hint(self) -> str:
        return self._relogin(f"The server refused the {self._login.provider if self._login else ''} sign-in even after a refresh").message


def encode_header_value(value: str) -> str:
    """A value as the SDK puts it in Mcp-Name: verbatim if it survives an HTTP field, else `=?base64?…?=`."""
    if _HEADER_SAFE.fullmatch(value) and value == value.strip() and not _B64_SENTINEL.fullmatch(value):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="


# --- mapping HTTP failures to JSON-RPC errors -------------------------------------------------

_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _deny_details(response: httpx.Response, body: bytes) -> dict[str, Any]:
    """What the server said about a denial: JSON body fields, WWW-Authenticate params, Retry-After."""
    details: dict[str, Any] = {"status": response.status_code}
    challenge = response.headers.get("www-authenticate", "")
    for key, value in _AUTH_PARAM.findall(challenge):
        if key in ("error", "error_description", "scope", "resource_metadata"):
            details[key] = value
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("error", "error_description"):
            if isinstance(parsed.get(key), str):
                details[key] = parsed[key]
    retry_after = response.headers.get("retry-after", "")
    if retry_after.isdigit():
        details["retry_after"] = int(retry_after)
    return details


def _seconds(n: int) -> str:
    return f"{n} second" if n == 1 else f"{n} seconds"


def status_error(response: httpx.Response, body: bytes, credential: Credential) -> BridgeError:
    """The JSON-RPC error for an HTTP failure status, from its row of the decision table."""
    details = _deny_details(response, body)
    status = response.status_code
    if 300 <= status < 400:
        where = response.headers.get("location", "another URL")
        return BridgeError(
            INVALID_REQUEST, f"The server redirected to {where}; use that URL with `mcp-pa connect` (HTTP {status}).", details
        )
    decision = decisions.for_reply(status, details.get("error"))
    code = decision.jsonrpc_code if decision else INTERNAL_ERROR
    template = decision.bridge_message if decision else decisions.GENERIC_BRIDGE_MESSAGE
    message = template.format(
        status=status,
        said=f": {details['error_description']}" if details.get("error_description") else "",
        wait=_seconds(details["retry_after"]) if "retry_after" in details else "a little while",
        scope=details.get("scope", "a scope"),
        hint=credential.unauthorized_hint(),
    )
    return BridgeError(code, message, details)


# --- framing --------------------------------------------------------------------------------


def _error_message(request_id: Any, error: BridgeError) -> dict[str, Any]:
    payload: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        payload["data"] = error.data
    return {"jsonrpc": "2.0", "id": request_id, "error": payload}


def _is_request(message: dict[str, Any]) -> bool:
    return "method" in message and "id" in message


def _jsonrpc_error_body(body: bytes) -> dict[str, Any] | None:
    """A JSON-RPC error object in a non-2xx body (the SDK answers 400/404 that way), else None."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, dict) and parsed.get("jsonrpc") == "2.0" and isinstance(parsed.get("error"), dict):
        return parsed
    return None


@dataclass
class _SSEParser:
    """Incremental text/event-stream parser yielding the `data` of each complete event."""

    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> Iterator[str]:
        if line == "":
            if self._data:
                yield "\n".join(self._data)
            self._data = []
        elif line.startswith("data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
        # `event:`, `id:`, `retry:` and comments need no handling: this transport resumes nothing.


# --- the bridge -----------------------------------------------------------------------------


@dataclass
class _InFlight:
    task: asyncio.Task[None]
    modern: bool


class Bridge:
    """Relays JSON-RPC lines from stdin to the server and the answers back to stdout."""

    def __init__(self, url: str, credential: Credential, client: httpx.AsyncClient, out: BinaryIO) -> None:
        self.url = url
        self.credential = credential
        self.client = client
        self.out = out
        self.session_id: str | None = None
        self.protocol_version: str | None = None  # negotiated by a handshake-era initialize
        self._in_flight: dict[Any, _InFlight] = {}
        self._client_gone = False

    def write(self, message: Any) -> None:
        # One complete line per synchronous write: concurrent tasks never interleave a frame.
        try:
            self.out.write(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):
            # The client closed our stdout; its stdin EOF will follow and end the bridge.
            if not self._client_gone:
                log.warning("the client closed the connection; answers are dropped")
            self._client_gone = True

    async def run(self, lines: asyncio.Queue[bytes | None]) -> None:
        async with asyncio.TaskGroup() as tasks:
            while (line := await lines.get()) is not None:
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError as exc:
                    self.write(_error_message(None, BridgeError(PARSE_ERROR, f"Parse error: {exc}")))
                    continue
                if self._consume_cancellation(message):
                    continue
                task = tasks.create_task(self.relay(message))
                if isinstance(message, dict) and _is_request(message):
                    request_id = message["id"]
                    self._in_flight[request_id] = _InFlight(task, self._modern_version(message) is not None)
                    task.add_done_callback(functools.partial(self._forget, request_id))

    def _forget(self, request_id: Any, task: asyncio.Task[None]) -> None:
        # Only this task's entry: a client may reuse an id once its request is answered.
        entry = self._in_flight.get(request_id)
        if entry is not None and entry.task is task:
            del self._in_flight[request_id]

    def _consume_cancellation(self, message: Any) -> bool:
        """Abort a modern request's POST on `notifications/cancelled`; True means "do not POST".

        From 2026-07-28 the HTTP wire has no client→server notifications: closing the request's
        stream is the cancellation. Handshake-era cancellations are POSTed as before.
        """
        if not (isinstance(message, dict) and message.get("method") == "notifications/cancelled"):
            return False
        params = message.get("params") or {}
        entry = self._in_flight.get(params.get("requestId")) if isinstance(params, dict) else None
        if entry is None or not entry.modern:
            return False
        entry.task.cancel()
        return True

    @staticmethod
    def _modern_version(message: dict[str, Any]) -> str | None:
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
        return version if isinstance(version, str) else None

    def _message_headers(self, message: Any) -> dict[str, str]:
        """Transport headers for one message, as the SDK's own HTTP client would send them."""
        headers = {"accept": ACCEPT, "content-type": "application/json"}
        if self.session_id:
            headers[MCP_SESSION_ID_HEADER] = self.session_id
        if not isinstance(message, dict):
            return headers  # a batch: only the session headers apply
        method = message.get("method")
        version = self._modern_version(message) or (None if method == "initialize" else self.protocol_version)
        if version:
            headers[MCP_PROTOCOL_VERSION_HEADER] = version
        if isinstance(method, str):
            # Mcp-Method/Mcp-Name let the front door check the tool's permission before the app.
            headers[contract.HEADER_MCP_METHOD] = method
            params = message.get("params")
            name_key = NAME_BEARING_METHODS.get(method)
            if name_key and isinstance(params, dict) and isinstance(params.get(name_key), str):
                headers[contract.HEADER_MCP_NAME] = encode_header_value(params[name_key])
        return headers

    async def relay(self, message: Any) -> None:
        """POST one message (retrying once with a fresh token on 401) and deliver the answer."""
        request_id = message.get("id") if isinstance(message, dict) and _is_request(message) else None
        try:
            await self._post_and_deliver(message, request_id)
        except BridgeError as exc:
            self._fail(request_id, exc)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            advice = "Check the URL, that the server is running, and --ca if it uses a private certificate authority."
            self._fail(request_id, BridgeError(CONNECTION_CLOSED, f"Cannot reach {self.url}: {reason}. {advice}"))
        except Exception:  # a bug here must cost one message, not the client's whole connection
            log.exception("relaying a message failed")
            self._fail(request_id, BridgeError(INTERNAL_ERROR, "The bridge failed to relay this message; see its log."))

    def _fail(self, request_id: Any, error: BridgeError) -> None:
        if request_id is not None:
            self.write(_error_message(request_id, error))
        else:
            log.warning("message not delivered", extra={"reason": error.message})

    async def _post_and_deliver(self, message: Any, request_id: Any) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        for attempt in (1, 2):
            credential_headers = await self.credential.headers()
            headers = {**self._message_headers(message), **credential_headers}
            request = self.client.build_request("POST", self.url, content=body, headers=headers)
            response = await self.client.send(request, stream=True)
            try:
                if response.status_code == 401 and attempt == 1 and self.credential.refreshable:
                    log.info("server answered 401; running the token command again")
                    await self.credential.refresh(credential_headers)
                    continue
                await self._deliver(message, request_id, response)
                return
            finally:
                await response.aclose()

    async def _deliver(self, message: Any, request_id: Any, response: httpx.Response) -> None:
        if response.status_code >= 300:
            body = await response.aread()
            if request_id is not None and (rpc_error := _jsonrpc_error_body(body)) is not None:
                self.write({**rpc_error, "id": request_id})
                return
            raise status_error(response, body, self.credential)
        self._remember_session(response)
        if response.status_code in (202, 204):
            if request_id is not None:
                raise BridgeError(INVALID_REQUEST, "The server accepted the request but sent no answer (HTTP 202).")
            return
        content_type = response.headers.get("content-type", "").lower()
        if content_type.startswith("text/event-stream"):
            await self._deliver_events(request_id, response)
        elif content_type.startswith("application/json"):
            body = await response.aread()
            try:
                answer = json.loads(body)
            except ValueError as exc:
                raise BridgeError(PARSE_ERROR, f"The server's JSON answer could not be parsed: {exc}") from exc
            self._remember_version(answer)
            self.write(answer)
        elif request_id is not None:
            raise BridgeError(INVALID_REQUEST, f"The server answered with unexpected content type {content_type!r}.")

    async def _deliver_events(self, request_id: Any, response: httpx.Response) -> None:
        parser = _SSEParser()
        async for line in response.aiter_lines():
            for data in parser.feed(line):
                try:
                    event = json.loads(data)
                except ValueError:
                    log.warning("skipped an SSE event that is not JSON")
                    continue
                self._remember_version(event)
                self.write(event)
                if isinstance(event, dict) and event.get("id") == request_id and "method" not in event:
                    return  # the answer to this request: the stream has nothing more for us
        if request_id is not None:
            raise BridgeError(CONNECTION_CLOSED, "The server's event stream ended without an answer.")

    def _remember_session(self, response: httpx.Response) -> None:
        if session_id := response.headers.get(MCP_SESSION_ID_HEADER):
            self.session_id = session_id
        if version := response.headers.get(MCP_PROTOCOL_VERSION_HEADER):
            self.protocol_version = version

    def _remember_version(self, answer: Any) -> None:
        # A handshake-era initialize result names the version every later request must carry.
        result = answer.get("result") if isinstance(answer, dict) else None
        if (
            isinstance(result, dict)
            and isinstance(result.get("protocolVersion"), str)
            and "serverInfo" in result
            and result["protocolVersion"] not in MODERN_PROTOCOL_VERSIONS
        ):
            self.protocol_version = result["protocolVersion"]


# --- process plumbing -----------------------------------------------------------------------


def _claim_stdout() -> BinaryIO:
    """Keep fd 1 for protocol frames only: stray prints and child output go to stderr instead."""
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def _start_stdin_reader(queue: asyncio.Queue[bytes | None]) -> None:
    """Feed stdin lines into `queue`, then None at end of input.

    A daemon thread reads, so any stdin (pipe, file, tty) works with no line-length cap, and a
    read still blocked when the bridge stops cannot hold the process open.
    """
    loop = asyncio.get_running_loop()

    def read() -> None:
        for line in iter(sys.stdin.buffer.readline, b""):
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()


def build_credential(args: argparse.Namespace, verify: ssl.SSLContext | bool = True) -> Credential:
    if getattr(args, "login", False):
        return LoginCredential(args.url, args.provider, verify)
    if args.provider is not None:
        raise ValueError("--provider goes with --login")
    if args.token_command is not None:
        return TokenCommandCredential(args.token_command)
    if args.api_key_env is not None:
        # The variable's name is the user's choice at launch, so this is the one place outside
        # mcp_pa.core.settings that reads the environment; the bridge is a client, not a server process.
        key = os.environ.get(args.api_key_env, "").strip()
        if not key:
            raise ValueError(f"--api-key-env {args.api_key_env}: that environment variable is not set or empty")
        return ApiKeyCredential(args.api_key_env, key)
    return Credential()


def build_verify(ca: str | None) -> ssl.SSLContext | bool:
    if ca is None:
        return True
    if not os.path.isfile(ca):
        raise ValueError(f"--ca {ca}: no such file")
    try:
        return ssl.create_default_context(cafile=ca)
    except ssl.SSLError as exc:
        raise ValueError(f"--ca {ca}: not a PEM certificate bundle ({exc})") from exc


def check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL; pass the server's MCP URL, e.g. https://mcp.example.com/mcp")
    if parts.scheme == "http" and not is_loopback_url(url):
        raise ValueError(f"{url!r}: refusing to send a credential over plain http to a remote host; use https")
    return url


async def serve(url: str, credential: Credential, verify: ssl.SSLContext | bool, out: BinaryIO) -> None:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    async with httpx.AsyncClient(verify=verify, timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
        _start_stdin_reader(queue)
        await Bridge(url, credential, client, out).run(queue)


def main(args: argparse.Namespace) -> int:
    """Entry point of `mcp-pa connect URL [--login [--provider NAME] | --api-key-env NAME | --token-command CMD] [--ca FILE]`."""
    logs.configure("INFO")
    for noisy in ("httpx", "httpx2"):  # their request lines are noise in a client's log (Authlib uses httpx2 when installed)
        logging.getLogger(noisy).setLevel(logging.WARNING)  # its request lines are noise in a client's log
    url = check_url(args.url)
    verify = build_verify(args.ca)
    credential = build_credential(args, verify)
    out = _claim_stdout()
    log.info("bridge ready", extra={"url": url, "credential": credential.describe()})
    asyncio.run(serve(url, credential, verify, out))
    log.info("stdin closed; bridge stopped")
    return 0
