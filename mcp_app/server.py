"""`mcp-pa app --listen HOST:PORT [--workers N]`: serve the MCP app with uvicorn.

With `--workers N` (N > 1) uvicorn's supervisor shares one listening socket between N worker
processes, each built by `worker_app`. An embedded PostgreSQL (no connection string set) is
started by this process, handed to the workers through the environment, and stopped when the
app exits, SIGTERM included.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal

import uvicorn
from starlette.types import ASGIApp

from mcp_app import tracing
from mcp_app.app import create_app
from mcp_app.db import Database, database_in_use
from mcp_pa.core import logs
from mcp_pa.core.net import parse_listen
from mcp_pa.core.settings import ENV_PREFIX, get_settings
from mcp_pa.core.tracing import shutdown_tracing

# The SDK's stateless transport logs "Terminating session: None" at INFO after every request.
QUIET_LOGGERS = ("mcp.server.streamable_http",)
WORKER_FACTORY = "mcp_app.server:worker_app"


def configure_logging(level: str) -> None:
    """Our JSON logs, without the per-request INFO lines of the SDK."""
    logs.configure(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def worker_app() -> ASGIApp:
    """The app of one worker process (`--workers N`): settings from the environment the parent set."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return tracing.instrument(create_app(settings))


class _Terminated(BaseException):
    """SIGTERM arrived: unwinds `main` so the embedded PostgreSQL is stopped before the process ends."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise _Terminated


def main(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    workers = int(getattr(args, "workers", 1) or 1)
    if workers < 1:
        raise ValueError("--workers must be at least 1")
    settings = get_settings()
    configure_logging(settings.log_level)
    # uvicorn re-raises the SIGTERM it handled once it has shut down; with the default handler
    # that would end the process before any cleanup, so ours unwinds this function instead.
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with database_in_use(settings) as dsn:
            # log_config=None keeps our JSON logging; proxy headers are Envoy's, and only it reaches us.
            options = dict(host=host, port=port, log_config=None, access_log=False, proxy_headers=True, forwarded_allow_ips="127.0.0.1")
            if workers == 1:
                try:
                    uvicorn.run(tracing.instrument(create_app(settings, Database(dsn))), **options)  # type: ignore[arg-type]
                finally:
                    shutdown_tracing()  # the spans still queued, SIGTERM included
            else:
                os.environ[f"{ENV_PREFIX}DATABASE_CONNECTION_STRING"] = dsn  # the workers read their settings from it
                uvicorn.run(WORKER_FACTORY, factory=True, workers=workers, **options)  # type: ignore[arg-type]
    except _Terminated:
        # Cleanup done: end by the signal itself, so the exit status still says SIGTERM.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    return 0
