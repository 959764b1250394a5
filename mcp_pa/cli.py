"""The `mcp-pa` command: up, authz, app, api-key, db, connect.

Each subcommand imports its part lazily so that `mcp-pa authz` never loads the app and
settings errors are reported as one clear line, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from mcp_pa import contract


def _add_up(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run the whole stack on this machine (PostgreSQL, authz, app, Envoy)")
    p.add_argument("--https-port", type=int, default=contract.DEFAULT_HTTPS_PORT)
    p.add_argument("--http-port", type=int, default=contract.DEFAULT_HTTP_PORT)
    p.add_argument("--authz-port", type=int, default=contract.DEFAULT_AUTHZ_PORT)
    p.add_argument("--app-port", type=int, default=contract.DEFAULT_APP_PORT)
    p.add_argument("--state-dir", default=None, help="state directory (default .mcp-pa)")
    p.add_argument(
        "--behind-tls-proxy", action="store_true",
        help="a platform terminates TLS in front: serve MCP on --http-port in plain HTTP on all interfaces (HSTS kept)",
    )
    p.set_defaults(run=lambda a: _call("mcp_pa.up", a))


def _add_authz(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("authz", help="run the gRPC ext_authz service alone")
    p.add_argument("--listen", default=f"127.0.0.1:{contract.DEFAULT_AUTHZ_PORT}")
    p.add_argument("--metrics-port", type=int, default=None, help="Prometheus port (default MCP_HTTP_AUTHZ_METRICS_PORT; 0 disables)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    p.set_defaults(run=lambda a: _call("authz_service.server", a))


def _add_app(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="run the MCP app alone")
    p.add_argument("--listen", default=f"127.0.0.1:{contract.DEFAULT_APP_PORT}")
    p.set_defaults(run=lambda a: _call("mcp_app.server", a))


def _add_api_key(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api-key", help="manage API keys")
    keys = p.add_subparsers(dest="api_key_command", required=True)
    c = keys.add_parser("create", help="make an API key, store its hash, print the key once")
    c.add_argument("--id", required=True)
    c.add_argument("--tenant", required=True)
    c.add_argument("--permissions", default="read,write")
    c.add_argument("--expires", default=None, help="ISO 8601 date or datetime, or a duration like 90d")
    c.add_argument("--file", default=None, help="keys file (default MCP_HTTP_API_KEYS_FILE)")
    c.set_defaults(run=lambda a: _call("authz_service.providers.apikey", a, "cli_create"))


def _add_db(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="database maintenance")
    db = p.add_subparsers(dest="db_command", required=True)
    m = db.add_parser("migrate", help="upgrade every tenant schema to the newest migration")
    m.set_defaults(run=lambda a: _call("mcp_app.db", a, "cli_migrate"))


def _add_connect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("connect", help="stdio ↔ Streamable HTTP bridge for local-only MCP clients")
    p.add_argument("url")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--api-key-env", default=None, help="environment variable holding the API key")
    g.add_argument("--token-command", default=None, help="command printing a bearer token")
    p.add_argument("--ca", default=None, help="CA bundle to trust for the server's certificate")
    p.set_defaults(run=lambda a: _call("mcp_pa.connect", a))


def _call(module: str, args: argparse.Namespace, func: str = "main") -> int:
    import importlib

    entry: Callable[[argparse.Namespace], int | None] = getattr(importlib.import_module(module), func)
    return entry(args) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-pa", description="Multi-tenant personal-assistant MCP server")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_up, _add_authz, _add_app, _add_api_key, _add_db, _add_connect):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # settings and argument errors: one clear message, no traceback
        print(f"mcp-pa: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
