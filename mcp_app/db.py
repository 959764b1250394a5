"""The tenant database: an asyncpg pool, per-tenant schemas, migrations and RLS transactions.

Every tenant's rows live in schema `tenant_<id>`. A request's transaction sets the search path
to that schema, switches to a NOLOGIN role without BYPASSRLS and puts the caller's user id in
a transaction-local setting, so the row-level-security policies of the migrations decide what
each statement sees. Schemas are created and migrated on first use under an advisory lock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Iterator

import asyncpg
from prometheus_client import Gauge

from mcp_pa.core import contract
from mcp_pa.core.settings import ENV_PREFIX, Settings, get_settings

log = logging.getLogger(__name__)

# The role every tenant transaction runs as: no login, no superuser, no BYPASSRLS.
TENANT_ROLE = "mcp_pa_tenant"
MIGRATIONS_TABLE = "schema_migrations"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Tables the tenant role may only read and append to (no UPDATE/DELETE on the audit log).
APPEND_ONLY_TABLES = ("audit_events",)
PING_TIMEOUT = 2.0  # seconds a /readyz request waits for the database check
# 1 when the last readiness check reached the database (the dashboard's and alerts' "DB ready").
# With several workers the lowest one counts: any worker that cannot reach PostgreSQL makes it 0.
DATABASE_READY = Gauge("mcp_app_database_ready", "1 when the last /readyz check reached PostgreSQL, else 0", multiprocess_mode="min")


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned SQL file of `mcp_app/migrations` (`0001_initial.sql` → version 1)."""

    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """All migrations, in version order; file names must start with a unique number."""
    found: list[Migration] = []
    for entry in sorted(MIGRATIONS_DIR.glob("*.sql")):
        number, _, rest = entry.name.partition("_")
        found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def quote_ident(name: str) -> str:
    """A PostgreSQL quoted identifier (names are validated first; quoting is the second wall)."""
    return '"' + name.replace('"', '""') + '"'


def schema_for(tenant_id: str) -> str:
    """The validated, quoted schema name of a tenant; ValueError before any SQL otherwise."""
    schema = contract.tenant_schema(tenant_id)
    if contract.is_reserved_tenant_id(tenant_id):
        raise ValueError(f"invalid tenant id {tenant_id!r}: reserved PostgreSQL schema name")
    return quote_ident(schema)


def _advisory_key(schema: str) -> int:
    # A stable signed 64-bit key per schema, so replicas serialise on the same lock.
    return int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)


async def ensure_role(conn: asyncpg.Connection) -> None:
    """Create the tenant role if missing and let the connecting user switch to it."""
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", TENANT_ROLE):
        # Another replica may create it between our check and our CREATE: same outcome.
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await conn.execute(f"CREATE ROLE {quote_ident(TENANT_ROLE)} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT")
    if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        # A non-superuser needs membership to SET ROLE; superusers may switch to any role.
        await conn.execute(f"GRANT {quote_ident(TENANT_ROLE)} TO CURRENT_USER")
    await ensure_vector_extension(conn)


async def ensure_vector_extension(conn: asyncpg.Connection) -> None:
    """pgvector, once per database, in schema public (migration 0003 names it there); a clear error when this role may not."""
    schema = await conn.fetchval("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'")
    if schema is None:
        try:
            with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        except asyncpg.InsufficientPrivilegeError as exc:
            raise RuntimeError("pgvector: this role may not create the extension; run `CREATE EXTENSION vector SCHEMA public` once as a superuser") from exc
        except asyncpg.FeatureNotSupportedError as exc:
            raise RuntimeError("pgvector is not installed in this PostgreSQL (semantic search needs it): install pgvector 0.6+") from exc
    elif schema != "public":
        raise RuntimeError(f"pgvector is installed in schema {schema}; the migrations expect public (ALTER EXTENSION vector SET SCHEMA public)")


async def migrate_schema(conn: asyncpg.Connection, tenant_id: str, migrations: list[Migration]) -> list[int]:
    """Create and upgrade one tenant schema; returns the versions applied (empty when current).

    Runs in one transaction under an advisory lock keyed on the schema, so concurrent first
    requests (in this process or in other replicas) create the schema exactly once.
    """
    schema = schema_for(tenant_id)
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _advisory_key(schema))
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"SET LOCAL search_path TO {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
            "version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {MIGRATIONS_TABLE}")}
        for migration in migrations:
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)", migration.version, migration.name
            )
            applied.append(migration.version)
        if applied:
            await _grant_tenant_role(conn, schema)
    if applied:
        log.info("tenant schema migrated", extra={"tenant": tenant_id, "versions": applied})
    return applied


async def _grant_tenant_role(conn: asyncpg.Connection, schema: str) -> None:
    role = quote_ident(TENANT_ROLE)
    await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> $2",
        schema.strip('"'),
        MIGRATIONS_TABLE,
    )
    for row in tables:
        table = f"{schema}.{quote_ident(row['tablename'])}"
        privileges = "SELECT, INSERT" if row["tablename"] in APPEND_ONLY_TABLES else "SELECT, INSERT, UPDATE, DELETE"
        await conn.execute(f"GRANT {privileges} ON {table} TO {role}")


class Database:
    """The app's connection pool and the one way tools reach tenant data."""

    def __init__(self, dsn: str, *, max_size: int = 10) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._migrations = load_migrations()
        self._role_ready = False
        self._role_lock = asyncio.Lock()
        self._probe: asyncio.Task[bool] | None = None
        self._ready: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def dsn(self) -> str:
        """Where the pool connects (the embeddings worker LISTENs on a connection of its own)."""
        return self._dsn

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database not started")
        return self._pool

    async def start(self) -> None:
        """Create the pool without connecting: the app starts (and reports not ready) while
        the database is down, and recovers when it comes back."""
        self._pool = await asyncpg.create_pool(self._dsn, min_size=0, max_size=self._max_size)

    async def _ensure_role_once(self) -> None:
        if self._role_ready:
            return
        async with self._role_lock:
            if not self._role_ready:
                async with self.pool.acquire() as conn:
                    await ensure_role(conn)
                self._role_ready = True

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> bool:
        """True when the database answered and the tenant role exists (for /readyz).

        The check runs as one shielded task that outlives a probe's timeout, so on a slow or
        busy machine a connection that takes longer than the probe still gets made and the
        next probe succeeds, instead of every probe starting (and abandoning) a new one.
        """
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._check())
        try:
            return await asyncio.wait_for(asyncio.shield(self._probe), PING_TIMEOUT)
        except asyncio.TimeoutError:
            return False

    async def _check(self) -> bool:
        try:
            async with self.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
            await self._ensure_role_once()
            DATABASE_READY.set(1)
            return True
        except Exception as exc:  # a health check reports every failure, it never raises
            log.warning("database not ready", extra={"reason": f"{type(exc).__name__}: {exc}"[:300]})
            DATABASE_READY.set(0)
            return False

    async def ensure_tenant(self, tenant_id: str) -> None:
        """Create and migrate the tenant's schema once per process (and once across replicas)."""
        schema_for(tenant_id)  # refuse a bad id before any SQL
        if tenant_id in self._ready:
            return
        await self._ensure_role_once()
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            if tenant_id in self._ready:
                return
            async with self.pool.acquire() as conn:
                await migrate_schema(conn, tenant_id, self._migrations)
            self._ready.add(tenant_id)

    @contextlib.asynccontextmanager
    async def transaction(self, identity: contract.Identity) -> AsyncIterator[asyncpg.Connection]:
        """A transaction in the caller's tenant schema, as the tenant role, bound to the caller.

        Every setting is transaction-local (`set_config(..., true)`), so nothing survives the
        commit or rollback and a pooled connection never carries one caller into the next.
        """
        schema = schema_for(identity.tenant_id)
        await self.ensure_tenant(identity.tenant_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT set_config('search_path', $1, true), set_config('role', $2, true), "
                "set_config('mcp.tenant_schema', $3, true), set_config('mcp.user_id', $4, true), "
                "set_config('mcp.is_admin', $5, true)",
                schema,
                TENANT_ROLE,
                contract.tenant_schema(identity.tenant_id),
                identity.user_id,
                "on" if identity.has(contract.PERMISSION_ADMIN) else "off",
            )
            yield conn

    async def tenant_ids(self) -> list[str]:
        """Every tenant that has a migrated schema."""
        rows = await self.pool.fetch(
            "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
            "WHERE c.relname = $1 AND n.nspname LIKE 'tenant\\_%'",
            MIGRATIONS_TABLE,
        )
        prefix = contract.TENANT_SCHEMA_PREFIX
        return sorted(r["nspname"][len(prefix) :] for r in rows if contract.is_valid_tenant_id(r["nspname"][len(prefix) :]))


def database_dsn(settings: Settings) -> str:
    """The configured PostgreSQL URL, or an embedded PostgreSQL in the state directory.

    The embedded one stays up until this process exits; `database_in_use` stops it sooner.
    """
    if settings.database_connection_string:
        return settings.database_connection_string
    from mcp_pa.core.postgres import EmbeddedPostgres, embedded_pgdata  # local development only

    return EmbeddedPostgres(embedded_pgdata(Path(settings.state_dir))).dsn


@contextlib.contextmanager
def database_in_use(settings: Settings, *, create: bool = True) -> Iterator[str]:
    """The DSN to use while the block runs: the configured URL, or the state directory's embedded
    PostgreSQL, started (or reused) here and stopped on the way out unless another live process holds it.

    `create=False` refuses to make a new embedded database where none exists (ValueError naming the fix).
    """
    if settings.database_connection_string:
        yield settings.database_connection_string
        return
    from mcp_pa.core.postgres import EmbeddedPostgres, embedded_pgdata, has_embedded  # local development only

    state_dir = Path(settings.state_dir).resolve()
    if not create and not has_embedded(state_dir):
        raise ValueError(
            f"no database: {ENV_PREFIX}DATABASE_CONNECTION_STRING is not set and {state_dir} holds no embedded PostgreSQL; "
            f"set the connection string, or {ENV_PREFIX}STATE_DIR to the state directory `mcp-pa up` uses"
        )
    with EmbeddedPostgres(embedded_pgdata(state_dir)) as postgres:
        yield postgres.dsn


async def migrate_all(dsn: str) -> dict[str, list[int]]:
    """Upgrade every existing tenant schema; returns the versions applied per tenant."""
    database = Database(dsn, max_size=2)
    await database.start()
    try:
        results: dict[str, list[int]] = {}
        async with database.pool.acquire() as conn:
            await ensure_role(conn)  # the grants below need it
        for tenant_id in await database.tenant_ids():
            async with database.pool.acquire() as conn:
                results[tenant_id] = await migrate_schema(conn, tenant_id, database._migrations)
        return results
    finally:
        await database.close()


def cli_migrate(args: argparse.Namespace) -> int:
    """`mcp-pa db migrate`: upgrade every tenant schema to the newest migration (never in a new, empty database)."""
    from mcp_pa.core.postgres import describe_dsn

    settings = get_settings()
    with database_in_use(settings, create=False) as dsn:
        where = "the connection string" if settings.database_connection_string else f"the embedded PostgreSQL of {Path(settings.state_dir).resolve()}"
        print(f"database: {describe_dsn(dsn)} ({where})")
        results = asyncio.run(migrate_all(dsn))
    for tenant_id, versions in results.items():
        state = f"applied {', '.join(map(str, versions))}" if versions else "up to date"
        print(f"tenant {tenant_id}: {state}")
    print(f"{len(results)} tenant schema(s) checked")
    return 0
