"""Fixtures shared by every suite: an embedded PostgreSQL for the session."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.helpers import scratch_dir


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL 16 (pgserver) in a temporary data directory, for the whole session."""
    import pgserver

    with scratch_dir("mcp-pa-pg-") as root:
        server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
