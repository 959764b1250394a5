"""Fixtures for the client tests: the fake front door, a way to drive `mcp-pa connect`, and the sign-in stack."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from fakes import FakeProviders
from fakes.oauth import FakeAuthorizationServer
from mcp_pa.core import contract
from mcp_pa.up.stack import Ports
from tests.clients.front_door import FrontDoor
from tests.support.processes import REPO, Service, StackError, mcp_pa_command, npm_install, scratch_dir

STACK_START_TIMEOUT = 120.0  # two busy cores shared with other suites: generous, never asserted on

# The newest Inspector whose dependencies all run on Node 20: 0.21.x only declares node>=22.7.5
# for itself (npm warns, CLI mode works); 2.x pulls undici 8 / commander 15, which need Node 22;
# 0.15.0, the last without an engines floor, has no --transport/--header in CLI mode.
INSPECTOR_VERSION = "0.21.1"
INSPECTOR_DIR = Path(sys.prefix) / "npm" / f"inspector-{INSPECTOR_VERSION}"


@pytest.fixture(scope="module")
def front_door() -> Iterator[FrontDoor]:
    door = FrontDoor().start()
    try:
        yield door
    finally:
        door.stop()


@dataclass
class BridgeRun:
    """What one bridge process wrote: the JSON-RPC lines on stdout, its log on stderr."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    def by_id(self) -> dict[Any, dict[str, Any]]:
        return {m["id"]: m for m in self.messages if "id" in m}

    def assert_secret_absent(self, secret: str) -> None:
        assert secret not in self.stdout, "the credential was written to stdout"
        assert secret not in self.stderr, "the credential was written to the log"


def run_bridge(*args: str, messages: list[Any] | None = None, raw: bytes = b"", env: dict[str, str] | None = None) -> BridgeRun:
    """Run `mcp-pa connect ARGS`, feed it the messages (one per line), wait for it to finish at EOF."""
    lines = raw + b"".join(json.dumps(m).encode() + b"\n" for m in messages or [])
    proc = subprocess.run(
        mcp_pa_command("connect", *args),
        input=lines,
        capture_output=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        timeout=60,
    )
    return BridgeRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def request(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def tool_call(request_id: int, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return request(request_id, "tools/call", {"name": name, "arguments": arguments or {}})


INITIALIZE = request(
    1,
    "initialize",
    {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "pytest", "version": "1"}},
)
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


@dataclass
class Stack:
    """A running `mcp-pa up`: what it printed for clients, plus a read-only key made before start."""

    url: str
    api_key: str
    read_only_key: str
    ca: Path


# An Auth0 issuer that never resolves (.invalid): it only has to appear in the PRM for discovery.
AUTH0_DOMAIN = "mcp-pa-clients-test.invalid"


def _clean_env(**extra: str) -> dict[str, str]:
    """No MCP_HTTP_* a developer exported may leak into the stack under test."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MCP_HTTP_")}, **extra}


def _printed(log: Path, prefix: str) -> str | None:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack (PostgreSQL, authz, app, Envoy with TLS) from `mcp-pa up` on free ports."""
    base = tmp_path_factory.mktemp("stack")
    keys_file = base / "keys.json"
    made = subprocess.run(
        mcp_pa_command("api-key", "create", "--id", "readonly", "--tenant", "default", "--permissions",
                       contract.PERMISSION_READ, "--file", str(keys_file)),
        capture_output=True, text=True, cwd=REPO, env=_clean_env(), check=True, timeout=60,
    )
    read_only_key = made.stdout.strip().splitlines()[-1]
    ports = Ports.free()
    log = base / "up.log"
    up = Service(
        "mcp-pa up",
        mcp_pa_command("up", "--state-dir", str(base / "state"), *ports.up_flags()),
        log,
        lambda: _printed(log, "Ctrl-C stops everything") is not None,
        env=_clean_env(
            MCP_HTTP_API_KEYS_FILE=str(keys_file),
            MCP_HTTP_AUTH0_DOMAIN=AUTH0_DOMAIN,
            MCP_HTTP_AUTH0_AUDIENCE=f"https://localhost:{ports.https}{contract.MCP_PATH}",
        ),
        cwd=REPO,
    )
    try:
        up.run(STACK_START_TIMEOUT)
    except StackError as exc:
        pytest.fail(f"`mcp-pa up` did not get ready: {exc}")
    try:
        api_key, url = _printed(log, "API key:"), _printed(log, "MCP URL:")
        assert api_key is not None and url is not None
        yield Stack(url, api_key, read_only_key, base / "state" / "tls" / "ca.crt")
    finally:
        up.stop(timeout=30)


@pytest.fixture(scope="session")
def inspector() -> Path:
    """A project directory holding the pinned MCP Inspector, installed from npm once and cached."""
    installed = INSPECTOR_DIR / "node_modules" / "@modelcontextprotocol" / "inspector" / "package.json"
    if installed.exists() and json.loads(installed.read_text()).get("version") == INSPECTOR_VERSION:
        return INSPECTOR_DIR
    npm_install(INSPECTOR_DIR, f"@modelcontextprotocol/inspector@{INSPECTOR_VERSION}")
    return INSPECTOR_DIR


# --- the sign-in stack: `mcp-pa up` with login clients of fake providers (test_login*, shared) ---

AUTH0_CLIENT = "auth0-native-app"
KEYCLOAK_CLIENT = "mcp-pa-cli"
GOOGLE_CLIENT, GOOGLE_SECRET = "desktop-123.apps.googleusercontent.com", "GOCSPX-not-confidential"
GITHUB_CLIENT, GITHUB_SECRET = "Iv1.fakeapp", "github-app-secret"
# Keyring's own switch: no OS keyring, so the 0600 file is the store (as on a headless Linux box).
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


@dataclass
class LoginStack:
    """The running stack and the fake providers behind it."""

    url: str
    base: str
    ca: Path
    fake: FakeProviders
    auth0: FakeAuthorizationServer
    keycloak: FakeAuthorizationServer
    google: FakeAuthorizationServer
    github: FakeAuthorizationServer
    logs: Path


@pytest.fixture(scope="module")
def login_stack() -> Iterator[LoginStack]:
    with FakeProviders() as fake, scratch_dir("mcp-pa-login-") as base:
        ports = Ports.free()
        resource = f"https://localhost:{ports.https}{contract.MCP_PATH}"
        auth0 = FakeAuthorizationServer.auth0(fake, audience=resource)
        auth0.add_client(AUTH0_CLIENT)
        keycloak = FakeAuthorizationServer.oidc(fake, audience="mcp-pa")
        keycloak.add_client(KEYCLOAK_CLIENT)
        google = FakeAuthorizationServer.google(fake)
        google.add_client(GOOGLE_CLIENT, GOOGLE_SECRET)
        github = FakeAuthorizationServer.github(fake)
        github.add_client(GITHUB_CLIENT, GITHUB_SECRET)
        env = _clean_env(
            **fake.settings_env(), **google.settings_env(), **github.settings_env(),
            MCP_HTTP_AUTH0_ISSUER=auth0.issuer.issuer if auth0.issuer else "",
            MCP_HTTP_AUTH0_JWKS_URL=f"{fake.url}/auth0/jwks",
            MCP_HTTP_AUTH0_AUDIENCE=resource,
            MCP_HTTP_AUTH0_LOGIN_CLIENT_ID=AUTH0_CLIENT,
            MCP_HTTP_OIDC_PROVIDERS=json.dumps(
                [{"name": "keycloak", "issuer": f"{fake.url}/keycloak", "audience": "mcp-pa", "login_client_id": KEYCLOAK_CLIENT}]
            ),
            MCP_HTTP_GOOGLE_LOGIN_CLIENT_ID=GOOGLE_CLIENT,
            MCP_HTTP_GOOGLE_LOGIN_CLIENT_SECRET=GOOGLE_SECRET,
            MCP_HTTP_GITHUB_ENABLED="true",
            MCP_HTTP_GITHUB_CLIENT_ID=GITHUB_CLIENT,
            MCP_HTTP_GITHUB_CLIENT_SECRET=GITHUB_SECRET,
        )
        log = base / "up.log"
        up = Service("mcp-pa up", mcp_pa_command("up", "--state-dir", str(base / "state"), *ports.up_flags()), log,
                     lambda: _printed(log, "Ctrl-C stops everything") is not None, env=env, cwd=REPO)
        try:
            up.run(STACK_START_TIMEOUT)
        except StackError as exc:
            pytest.fail(f"`mcp-pa up` did not get ready: {exc}")
        try:
            url = _printed(log, "MCP URL:")
            assert url is not None
            yield LoginStack(url, url.removesuffix(contract.MCP_PATH), base / "state" / "tls" / "ca.crt",
                             fake, auth0, keycloak, google, github, base)
        finally:
            up.stop(timeout=30)


# --- driving `mcp-pa login` ------------------------------------------------------------------


class LoginProcess:
    """`mcp-pa login …` running; its stderr is read line by line as the person would read it."""

    def __init__(self, *args: str, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.proc = subprocess.Popen(
            mcp_pa_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, **NO_KEYRING, "MCP_PA_CONFIG_DIR": str(config), **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr_seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_seen.append(line)
            self.lines.put(line)

    def wait_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; stderr so far: {''.join(self.stderr_seen)}") from None
            if match := re.search(pattern, line):
                return match

    def authorization_url(self) -> str:
        return self.wait_line(r"^(https?://\S+)$").group(1)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # never leave a login holding the loopback port for the next test
            self.proc.wait()
            raise
        assert self.proc.stdout is not None
        stdout = self.proc.stdout.read()
        self._reader.join(timeout=10)  # the last stderr lines
        return self.proc.returncode, stdout, "".join(self.stderr_seen)


def browser_allows(url: str, decision: str = "allow") -> httpx.Response:
    """A person in a browser: open the consent page, click the button, follow the redirect home."""
    with httpx.Client(timeout=20) as http:
        page = http.get(url)
        assert page.status_code == 200, page.text
        action = re.search(r"action='([^']+)'", page.text)
        request = re.search(r"name='request' value='([^']+)'", page.text)
        assert action and request, page.text
        answer = http.post(action.group(1), data={"request": request.group(1), "decision": decision})
        assert answer.status_code == 302
        return http.get(answer.headers["location"])


def login(stack: LoginStack, provider: str, config: Path, *extra: str, env: dict[str, str] | None = None) -> LoginProcess:
    return LoginProcess("login", stack.url, "--provider", provider, "--no-browser", "--ca", str(stack.ca), *extra, config=config, env=env)


def stored(config: Path) -> dict[str, Any]:
    return json.loads((config / "mcp-pa" / "tokens.json").read_text())


def bridge(stack: LoginStack, config: Path, *extra: str) -> StdioServerParameters:
    """The Claude Desktop entry for `connect --login` (docs/clients.md), against the local stack; `extra` adds flags."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_pa", "connect", stack.url, "--login", "--ca", str(stack.ca), *extra],
        cwd=REPO,
        env={**NO_KEYRING, "MCP_PA_CONFIG_DIR": str(config)},
    )


async def first_call_refusal(params: StdioServerParameters) -> str:
    """What the bridge says when its first request already fails (the SDK raises it inside exception groups)."""
    with pytest.raises(Exception) as refused:
        async with Client(params, cache=None, read_timeout_seconds=60) as client:
            await client.call_tool("whoami", {})
    return " ".join(str(e) for e in _leaves(refused.value))


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
