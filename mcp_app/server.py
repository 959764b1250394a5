"""`mcp-pa app --listen HOST:PORT`: serve the MCP app with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from mcp_app.app import create_app
from mcp_pa import logs
from mcp_pa.settings import get_settings


def parse_listen(value: str) -> tuple[str, int]:
    """`127.0.0.1:8000` or `[::1]:8000` → (host, port); ValueError with the expected form."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def main(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    settings = get_settings()
    logs.configure(settings.log_level)
    app = create_app(settings)
    # log_config=None keeps our JSON logging; proxy headers are Envoy's, and only it reaches us.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    return 0
