"""The embedded PostgreSQL (the pgserver wheel) for local runs: one place that starts, reuses and stops it.

`mcp-pa up`, `mcp-pa app` without a connection string, the tests and the bench all use it.
pgserver is imported only when one is made, so production (a connection string) never loads it.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_pa.core.settings import ENV_PREFIX

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not start (or came back wrong); the message says what to do."""


# pgserver's list of the processes holding a handle on a data directory; the last one to leave stops the server.
HANDLES_FILE = ".handle_pids.json"


class EmbeddedPostgres:
    """PostgreSQL 16 from the pgserver wheel in a data directory: started, or reused if it runs there.

    `close` stops it when no other live process holds it, also when it was reused from a run that was killed.
    """

    def __init__(self, datadir: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR on servers and containers; harmless here.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import PostgresServer, get_server

        self.datadir = datadir
        try:
            datadir.mkdir(parents=True, exist_ok=True)
            with PostgresServer._lock:
                # A process killed with SIGKILL never removed itself from the list, so nobody would
                # ever be "last" again and the server would run forever: forget the dead ones.
                self.reused = _forget_dead_handles(datadir / HANDLES_FILE)
            self._server: PostgresServer = get_server(datadir, cleanup_mode="stop")
            with PostgresServer._lock:
                # get_server hands back a cached handle after an earlier `close` that was not the last
                # one; it never re-registers this process then, so `close` would never stop the server.
                self._server.global_process_id_list.get_and_add(os.getpid())
        except Exception as exc:  # pgserver raises whatever initdb/pg_ctl gave it; one line is enough
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL did not start ({exc}); its log is in {datadir}/log. "
                f"Or use your own: set {ENV_PREFIX}DATABASE_CONNECTION_STRING"
            ) from exc
        self.dsn: str = self._server.get_uri()

    def stop(self) -> None:
        """Stop the server (fast shutdown: connections cut) and keep the handle, so `start` can follow."""
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import, one per binary

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=self._server.system_user)

    def start(self) -> None:
        """Start it again after `stop`, on the same socket (the DSN stays valid)."""
        from pgserver.postgres_server import PostgresServer

        with PostgresServer._lock:
            self._server.ensure_postgres_running()
        if self._server.get_uri() != self.dsn:
            raise EmbeddedPostgresError("the embedded PostgreSQL came back on another socket")

    def close(self) -> None:
        """Stop the server for good; the data directory stays, so the next one in it reuses the data."""
        self._server.cleanup()

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _forget_dead_handles(handles: Path) -> bool:
    """Drop the processes that are gone from pgserver's handle list; True when a server was left running there."""
    import psutil  # a pgserver dependency

    try:
        pids = [int(pid) for pid in json.loads(handles.read_text())]
    except (OSError, ValueError, TypeError):
        pids = []
    live = [pid for pid in pids if pid != os.getpid() and psutil.pid_exists(pid)]
    if live != pids:
        handles.write_text(json.dumps(live))
    postmaster = handles.with_name("postmaster.pid")
    try:
        pid = int(postmaster.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return bool(psutil.pid_exists(pid))


def embedded_pgdata(state_dir: Path) -> Path:
    """Where the embedded PostgreSQL of a state directory keeps its data."""
    return state_dir / "pgdata"


def has_embedded(state_dir: Path) -> bool:
    """True when the state directory already holds an embedded PostgreSQL's data (initdb ran there)."""
    return (embedded_pgdata(state_dir) / "PG_VERSION").exists()


def describe_dsn(dsn: str) -> str:
    """A DSN fit to print: the password replaced by `***` (a socket DSN has none)."""
    parts = urllib.parse.urlsplit(dsn)
    if not parts.password:
        return dsn
    netloc = parts.netloc.rpartition("@")
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))
