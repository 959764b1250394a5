"""A stand-in for Envoy + authz in front of a real MCP SDK server, for the bridge's own tests.

The MCP side is the official SDK's Streamable HTTP app (one mount answering with SSE, one with
JSON). The gate in front checks the credential like the real front door and answers the
statuses the bridge must map: a tool call named `deny_<status>` gets that status with the
headers and body the real Envoy/authz service send for it. Every request's headers are kept
so tests can see exactly what the bridge sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from mcp_app.app import replaying
from mcp_pa.core import contract, decisions
from tests.support.processes import free_port, wait_for_port

API_KEY = "mcp_sk_fake_front_door_key_0123456789abcdef"
RESOURCE_METADATA = f"http://127.0.0.1{contract.PRM_MCP_PATH}"


def _scripted(decision: decisions.Decision, description: str, **details: Any) -> tuple[int, dict[str, str], bytes]:
    rendered = decisions.reply(decision, description, resource_metadata=RESOURCE_METADATA, **details)
    return rendered.status, rendered.headers, json.dumps(rendered.body).encode()


# What the real front door answers for each denial: rows of the decision table, rendered the
# way authz_service/response.py and Envoy's local replies render them.
DENIALS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "deny_401": _scripted(decisions.INVALID_TOKEN, "the API key is revoked"),
    "deny_403_scope": _scripted(decisions.INSUFFICIENT_SCOPE, "create_todo needs the write permission", scope="mcp:write"),
    "deny_403_policy": _scripted(decisions.ACCESS_DENIED, "tenant example_com is suspended"),
    "deny_429": _scripted(decisions.RATE_LIMITED_REPLY, decisions.RATE_LIMITED_REPLY.description or ""),
    "deny_503": _scripted(decisions.PROVIDER_UNAVAILABLE, "identity provider unreachable", retry_after=7),
}
MISSING_CREDENTIAL = _scripted(decisions.MISSING_CREDENTIAL, "no credential: send Authorization: Bearer <token> or x-api-key")


def build_mcp_server() -> MCPServer:
    server = MCPServer("front-door-fake")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    async def slow() -> str:
        """Outlast any test: only a cancellation ends this call."""
        await anyio.sleep(600)
        return "finished"

    for name in DENIALS:  # listed so clients may call them; the gate answers before they run
        server.tool(name=name)(lambda: "unreachable: the gate denies this tool")
    return server


@dataclass
class Gate:
    """ASGI gate: credential check, scripted denials, and a record of every request's headers."""

    app: Any
    tokens: set[str] = field(default_factory=set)
    seen: list[dict[str, str]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.seen.append(headers)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if not self._authenticated(headers):
            await _answer(send, *MISSING_CREDENTIAL)
            return
        denial = DENIALS.get(_tool_name(body) or "")
        if denial is not None:
            await _answer(send, *denial)
            return

        # The body once, then the real channel: the app waits on it for the disconnect.
        await self.app(scope, replaying({"type": "http.request", "body": body, "more_body": False}, receive), send)

    def _authenticated(self, headers: dict[str, str]) -> bool:
        if headers.get(contract.HEADER_API_KEY) == API_KEY:
            return True
        scheme, _, token = headers.get(contract.HEADER_AUTHORIZATION, "").partition(" ")
        return scheme.lower() == "bearer" and token in self.tokens


def _tool_name(body: bytes) -> str | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("method") == "tools/call":
        return (message.get("params") or {}).get("name")
    return None


async def _answer(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    all_headers = {**headers, "content-length": str(len(body))}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FrontDoor:
    """The fake running in a background thread: `url("sse")` / `url("json")` are MCP endpoints."""

    def __init__(self) -> None:
        self.port = free_port()
        security = TransportSecuritySettings(allowed_hosts=[f"127.0.0.1:{self.port}"], allowed_origins=[])
        sse, plain = build_mcp_server(), build_mcp_server()
        sse_app = sse.streamable_http_app(stateless_http=True, transport_security=security)
        json_app = plain.streamable_http_app(stateless_http=True, json_response=True, transport_security=security)

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with sse.session_manager.run(), plain.session_manager.run():
                yield

        app = Starlette(routes=[Mount("/sse", app=sse_app), Mount("/json", app=json_app)], lifespan=lifespan)
        self.gate = Gate(app)
        config = uvicorn.Config(self.gate, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="front-door", daemon=True)

    def url(self, flavour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{flavour}{contract.MCP_PATH}"

    def start(self) -> "FrontDoor":
        self._thread.start()
        wait_for_port(self.port, timeout=30)
        deadline = time.monotonic() + 30
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
