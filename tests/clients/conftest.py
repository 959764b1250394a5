"""Fixtures for the client tests: the fake front door and a way to drive `mcp-pa connect`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from mcp_pa.core import contract
from mcp_pa.up.stack import Ports
from tests.clients.front_door import FrontDoor
from tests.support.processes import REPO, Service, StackError, mcp_pa_command

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
    # Install beside the final place and rename: an interrupted install never looks complete.
    staging = INSPECTOR_DIR.with_name(f"{INSPECTOR_DIR.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(staging),
         f"@modelcontextprotocol/inspector@{INSPECTOR_VERSION}"],
        check=True, capture_output=True, timeout=600,
    )
    shutil.rmtree(INSPECTOR_DIR, ignore_errors=True)
    staging.rename(INSPECTOR_DIR)
    return INSPECTOR_DIR
