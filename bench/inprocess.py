"""The app served in-process by uvicorn over a given database: the bench parts that time tool calls without Envoy or authz."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import uvicorn

from bench.stack import ports
from mcp_app.app import create_app
from mcp_app.db import Database
from mcp_pa.core import contract
from mcp_pa.core.settings import Settings


@dataclass
class InProcessApp:
    """A started app: its MCP URL; `stop` shuts uvicorn down and waits for it."""

    url: str
    _server: uvicorn.Server
    _task: asyncio.Task[None]

    async def stop(self) -> None:
        self._server.should_exit = True
        await asyncio.wait_for(self._task, 30)


async def start_app(database: Database, dsn: str, embeddings: str) -> InProcessApp:
    """Serve the app on a free loopback port with `embeddings` (`off`, `local`…); returns once it answers."""
    app = create_app(Settings(database_connection_string=dsn, public_url="https://bench.invalid", embeddings=embeddings), database)
    # The SDK's MCPServer() calls logging.basicConfig(INFO) when nothing is configured (as here, unlike
    # `mcp-pa app`): a line per request ("Terminating session", httpx's "HTTP Request") would drown the figures.
    logging.getLogger().setLevel(logging.WARNING)
    (port,) = ports(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise RuntimeError("the app did not start")
        await asyncio.sleep(0.01)
    return InProcessApp(f"http://127.0.0.1:{port}{contract.MCP_PATH}", server, task)
