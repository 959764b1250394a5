"""Fixtures shared by every suite: an embedded PostgreSQL for the session."""

from __future__ import annotations

from typing import Iterator

import pytest

from mcp_pa.core.postgres import EmbeddedPostgres
from tests.support.processes import scratch_dir


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL 16 (pgserver) in a temporary data directory, for the whole session."""
    with scratch_dir("mcp-pa-pg-") as root, EmbeddedPostgres(root / "pgdata") as postgres:
        yield postgres.dsn
