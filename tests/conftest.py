"""Fixtures shared by every suite: an embedded PostgreSQL for the session."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 16 (pgserver) in a temporary data directory, for the whole session."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
