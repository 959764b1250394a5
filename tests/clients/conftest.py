"""Fixtures for the client tests: the fake front door and a way to drive `mcp-pa connect`."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from tests.clients.front_door import FrontDoor
from tests.helpers import REPO, mcp_pa_command


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
