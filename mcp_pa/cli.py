"""The `mcp-pa` command: up, authz, app, api-key, db, connect, login, logout, health.

Each subcommand imports its part inside its handler, so that `mcp-pa authz` never loads the app,
`connect` and `health` stay quick to start, and the base install (client side only) can run
`connect` without the server's dependencies. Settings errors are one clear line, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mcp_pa.core import contract


def _run_up(args: argparse.Namespace) -> int:
    from mcp_pa.up import supervisor

    return supervisor.main(args)


def _run_authz(args: argparse.Namespace) -> int:
    from authz_service import server

    return server.main(args)


def _run_app(args: argparse.Namespace) -> int:
    from mcp_app import server

    return server.main(args)


def _run_api_key_create(args: argparse.Namespace) -> int:
    from mcp_pa import api_key

    return api_key.create(args)


def _run_db_migrate(args: argparse.Namespace) -> int:
    from mcp_app import db

    return db.cli_migrate(args)


def _run_db_reembed(args: argparse.Namespace) -> int:
    from mcp_app.embeddings import worker

    return worker.cli_reembed(args)


def _run_connect(args: argparse.Namespace) -> int:
    from mcp_pa import connect

    return connect.main(args)


def _run_health(args: argparse.Namespace) -> int:
    from mcp_pa import health

    return health.main(args)


def _add_up(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("up", help="run the whole stack on this machine (PostgreSQL, authz, app, Envoy)")
    p.add_argument("--https-port", type=int, default=contract.DEFAULT_HTTPS_PORT)
    p.add_argument("--http-port", type=int, default=contract.DEFAULT_HTTP_PORT)
    p.add_argument("--authz-port", type=int, default=contract.DEFAULT_AUTHZ_PORT)
    p.add_argument("--app-port", type=int, default=contract.DEFAULT_APP_PORT)
    p.add_argument(
        "--authz-metrics-port", type=int, default=None, help="the authz service's Prometheus port (default MCP_HTTP_AUTHZ_METRICS_PORT; 0 disables)"
    )
    p.add_argument("--state-dir", default=None, help="state directory (default .mcp-pa)")
    p.add_argument("--workers", type=int, default=None, help="processes each for authz and app (default: the CPUs this process may use, at most 4)")
    p.add_argument(
        "--behind-tls-proxy", action="store_true",
        help="a platform terminates TLS in front: serve MCP on --http-port in plain HTTP on all interfaces (HSTS kept)",
    )
    p.set_defaults(run=_run_up)


def _add_authz(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("authz", help="run the gRPC ext_authz service alone")
    p.add_argument("--listen", default=f"127.0.0.1:{contract.DEFAULT_AUTHZ_PORT}")
    p.add_argument("--metrics-port", type=int, default=None, help="Prometheus port (default MCP_HTTP_AUTHZ_METRICS_PORT; 0 disables)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    p.set_defaults(run=_run_authz)


def _add_app(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("app", help="run the MCP app alone")
    p.add_argument("--listen", default=f"127.0.0.1:{contract.DEFAULT_APP_PORT}")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the port (uvicorn's supervisor)")
    p.add_argument("--http", choices=("httptools", "h11"), default="httptools", help="HTTP/1.1 parser (default httptools, C)")
    p.set_defaults(run=_run_app)


def _add_api_key(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("api-key", help="manage API keys")
    keys = p.add_subparsers(dest="api_key_command", required=True)
    c = keys.add_parser("create", help="make an API key, store its hash, print the key once")
    c.add_argument("--id", required=True)
    c.add_argument("--tenant", required=True)
    c.add_argument("--permissions", default="read,write")
    c.add_argument("--expires", default=None, help="ISO 8601 date or datetime, or a duration like 90d")
    c.add_argument("--file", default=None, help="keys file (default MCP_HTTP_API_KEYS_FILE)")
    c.set_defaults(run=_run_api_key_create)
    ls = keys.add_parser("list", help="show each key's id, tenant, permissions, expiry and state (never a hash)")
    ls.add_argument("--file", default=None, help="keys file (default MCP_HTTP_API_KEYS_FILE)")
    ls.set_defaults(run=_run_api_key_list)
    r = keys.add_parser("revoke", help="mark a key disabled; the authz service refuses it from its next reload")
    r.add_argument("id", help="the key's id, as `api-key list` shows it")
    r.add_argument("--file", default=None, help="keys file (default MCP_HTTP_API_KEYS_FILE)")
    r.set_defaults(run=_run_api_key_revoke)


def _run_api_key_list(args: argparse.Namespace) -> int:
    from mcp_pa import api_key

    return api_key.list_keys(args)


def _run_api_key_revoke(args: argparse.Namespace) -> int:
    from mcp_pa import api_key

    return api_key.revoke(args)


def _add_db(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("db", help="database maintenance")
    db = p.add_subparsers(dest="db_command", required=True)
    m = db.add_parser("migrate", help="upgrade every tenant schema to the newest migration")
    m.set_defaults(run=_run_db_migrate)
    r = db.add_parser("reembed", help="queue every item for the configured embedding model again (after changing MCP_HTTP_EMBEDDINGS*)")
    r.set_defaults(run=_run_db_reembed)


def _add_connect(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("connect", help="stdio ↔ Streamable HTTP bridge for local-only MCP clients")
    p.add_argument("url")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--login", action="store_true", help="use (and keep fresh) the tokens `mcp-pa login URL` stored")
    g.add_argument("--api-key-env", default=None, help="environment variable holding the API key")
    g.add_argument("--token-command", default=None, help="command printing a bearer token")
    p.add_argument("--provider", default=None, help="with --login: which stored sign-in (default: the newest)")
    p.add_argument("--ca", default=None, help="CA bundle to trust for the server's certificate")
    p.set_defaults(run=_run_connect)


def _run_login(args: argparse.Namespace) -> int:
    from mcp_pa import login

    return login.main(args)


def _run_logout(args: argparse.Namespace) -> int:
    from mcp_pa import login

    return login.logout(args)


def _add_login(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("login", help="sign in to a server with an identity provider it accepts; keeps the tokens for connect --login")
    p.add_argument("url", help="the server's MCP URL or base URL")
    p.add_argument("--provider", default=None, help="a provider the server lists (google, github, auth0, oidc-<name>)")
    p.add_argument("--device", action="store_true", help="sign in with a code on another device (RFC 8628) instead of a local browser")
    p.add_argument("--no-browser", action="store_true", help="print the sign-in URL instead of opening a browser")
    p.add_argument("--ca", default=None, help="CA bundle to trust for the server's certificate")
    p.add_argument("--timeout", type=float, default=300.0, help=argparse.SUPPRESS)  # tests: the browser that never returns
    p.set_defaults(run=_run_login)


def _add_logout(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("logout", help="forget (and revoke where the provider allows) the tokens login stored")
    p.add_argument("url", help="the server's MCP URL or base URL")
    p.add_argument("--provider", default=None, help="only this provider's sign-in (default: every one for the server)")
    p.add_argument("--ca", default=None, help="CA bundle to trust for the provider's revocation endpoint")
    p.set_defaults(run=_run_logout)


def _add_health(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("health", help="probe a service on this host: exit 0 when ready (for kubelet and compose probes)")
    p.add_argument("service", choices=("authz", "app"))
    p.add_argument("--port", type=int, default=None, help="default: the contract's port of that service")
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(run=_run_health)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-pa", description="Multi-tenant personal-assistant MCP server")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_up, _add_authz, _add_app, _add_api_key, _add_db, _add_connect, _add_login, _add_logout, _add_health):
        add(sub)
    return parser


# The base install is the client side only; these modules arrive with the extras (pyproject.toml).
_LOCAL_MODULES = frozenset({"envoy", "pgserver"})
_PROJECT_PACKAGES = frozenset({"mcp_pa", "authz_service", "mcp_app"})


def missing_extras_message(command: str, exc: ModuleNotFoundError) -> str | None:
    """The one line that names the extras to install, or None when the missing module is the project's own."""
    top = (exc.name or "").partition(".")[0]
    if not top or top in _PROJECT_PACKAGES:
        return None  # a bug in this project, not an install choice: let it surface
    extras = "server,local" if command == "up" or top in _LOCAL_MODULES else "server"
    return f"mcp-pa {command}: needs the [{extras}] extras (no module {top!r}): pip install 'mcp-pa[{extras}]'"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:  # a server command on the base install: say which extra, no traceback
        message = missing_extras_message(args.command, exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    except ValueError as exc:  # settings and argument errors: one clear message, no traceback
        print(f"mcp-pa: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
