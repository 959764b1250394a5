"""`mcp-pa app --listen HOST:PORT [--workers N] [--http httptools|h11]`: serve the MCP app with uvicorn.

With `--workers N` (N > 1) uvicorn's supervisor shares one listening socket between N worker
processes, each built by `worker_app`. An embedded PostgreSQL (no connection string set) is
started by this process, handed to the workers through the environment, and stopped when the
app exits, SIGTERM included. The workers keep their Prometheus metrics in files of one
directory (prometheus_client's multiprocess mode), so `/metrics` sums every worker whichever
one answers the scrape. HTTP/1.1 is parsed by httptools (C, ~20% less app CPU per tool call
than uvicorn's pure-Python h11: docs/scaling.md); `--http h11` keeps the other.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from typing import Iterator

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
HTTP_PARSERS = ("httptools", "h11")
# prometheus_client reads it in every worker: each keeps its values in files under this directory.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


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


@contextlib.contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory for the workers' metric files (or the operator's own), removed when the app stops."""
    if os.environ.get(MULTIPROC_ENV):
        yield  # the operator chose one (and cleans it between runs, as prometheus_client asks)
        return
    directory = tempfile.mkdtemp(prefix="mcp-pa-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)


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
            http = getattr(args, "http", None) or HTTP_PARSERS[0]
            options = dict(host=host, port=port, http=http, log_config=None, access_log=False, proxy_headers=True, forwarded_allow_ips="127.0.0.1")
            if workers == 1:
                try:
                    uvicorn.run(tracing.instrument(create_app(settings, Database(dsn))), **options)  # type: ignore[arg-type]
                finally:
                    shutdown_tracing()  # the spans still queued, SIGTERM included
            else:
                os.environ[f"{ENV_PREFIX}DATABASE_CONNECTION_STRING"] = dsn  # the workers read their settings from it
                with _metrics_directory():
                    uvicorn.run(WORKER_FACTORY, factory=True, workers=workers, **options)  # type: ignore[arg-type]
    except _Terminated:
        # Cleanup done: end by the signal itself, so the exit status still says SIGTERM.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    return 0
