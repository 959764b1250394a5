"""The MCP floor: a bare MCP SDK server (stateless, JSON responses, one trivial tool, no database).

What the SDK's own per-request machinery costs, so the app's `tools/call` can be read against it:
    python -m bench.sdk_floor --listen 127.0.0.1:8100
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from mcp.server.mcpserver import MCPServer

TOOL = "ping"


def build() -> object:
    server: MCPServer = MCPServer("floor")

    @server.tool(name=TOOL)
    def ping() -> dict[str, str]:
        """Answer at once."""
        return {"answer": "pong"}

    return server.streamable_http_app(streamable_http_path="/mcp", json_response=True, stateless_http=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sdk_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    host, _, port = parser.parse_args().listen.rpartition(":")
    logging.getLogger("mcp").setLevel(logging.WARNING)
    uvicorn.run(build(), host=host, port=int(port), log_level="warning", access_log=False)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
