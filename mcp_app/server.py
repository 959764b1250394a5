"""`mcp-pa app --listen HOST:PORT`: serve the MCP app with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from mcp_app.app import create_app
from mcp_pa.core import logs
from mcp_pa.core.net import parse_listen
from mcp_pa.core.settings import get_settings


def main(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    settings = get_settings()
    logs.configure(settings.log_level)
    app = create_app(settings)
    # log_config=None keeps our JSON logging; proxy headers are Envoy's, and only it reaches us.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    return 0
