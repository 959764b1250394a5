"""The embedded PostgreSQL (the pgserver wheel) for local runs: one place that starts, reuses and stops it.

`mcp-pa up`, `mcp-pa app` without a connection string, the tests and the bench all use it.
pgserver is imported only when one is made, so production (a connection string) never loads it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_pa.core.settings import ENV_PREFIX

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not start (or came back wrong); the message says what to do."""


class EmbeddedPostgres:
    """PostgreSQL 16 from the pgserver wheel in a data directory: started, or reused if it runs there."""

    def __init__(self, datadir: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR on servers and containers; harmless here.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

        self.datadir = datadir
        try:
            datadir.mkdir(parents=True, exist_ok=True)
            self._server: PostgresServer = get_server(datadir, cleanup_mode="stop")
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


def embedded_dsn(state_dir: Path) -> str:
    """The DSN of the embedded PostgreSQL in `<state_dir>/pgdata`, started (or reused) for this process."""
    return EmbeddedPostgres(state_dir / "pgdata").dsn
