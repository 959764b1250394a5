"""API keys: `MCP_HTTP_API_KEY` and the keys file (`MCP_HTTP_API_KEYS_FILE`), by SHA-256 hash.

Only hashes are stored. The keys file (YAML or JSON) is a list of records, either top-level or
under `keys:`::

    keys:
      - id: ci-bot
        sha256: 9f86d08…            # hex SHA-256 of the key
        tenant: acme
        permissions: [read, write]  # or "read,write"
        expires: 2027-01-01T00:00:00Z   # optional
        disabled: false                 # optional

The file is re-read when its mtime or size changes (checked at most once per second); a broken
new version is logged and the last good one stays in force.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Callable

from authz_service.config_files import ReloadableFile, parse_keys
from authz_service.errors import InvalidToken
from authz_service.models import KeyRecord, Principal
from mcp_pa.core.contract import API_KEY_PREFIX, PERMISSIONS

PROVIDER = "apikey"
DEFAULT_KEY_ID = "default"
DEFAULT_KEY_TENANT = "default"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The keys file's records, re-read when the file changes; the last good set survives errors."""

    def __init__(self, path: Path | None, on_change: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.on_change = on_change
        self._file = (
            ReloadableFile(path, parse_keys, setting="MCP_HTTP_API_KEYS_FILE", what="keys file", on_change=self._changed, clock=clock)
            if path is not None
            else None
        )

    @property
    def records(self) -> dict[str, KeyRecord]:
        return self._file.value if self._file is not None else {}

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def maybe_reload(self) -> None:
        """Re-read the file if it changed (see ReloadableFile)."""
        if self._file is not None:
            self._file.maybe_reload()

    def find(self, digest: str) -> KeyRecord | None:
        record = self.records.get(digest)
        # The dict lookup finds a candidate; compare_digest confirms it in constant time.
        if record is not None and hmac.compare_digest(record.sha256, digest):
            return record
        return None


class ApiKeyProvider:
    """Verifies API keys against MCP_HTTP_API_KEY and the keys file."""

    name = PROVIDER

    def __init__(self, static_key: str | None, store: KeyStore, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # wall clock: key expiry is a date
        self._static_hash = key_hash(static_key) if static_key else None
        self.store = store
        self._static_principal = Principal(
            provider=PROVIDER,
            subject=DEFAULT_KEY_ID,
            tenant_id=DEFAULT_KEY_TENANT,
            permissions=frozenset(PERMISSIONS),
        )

    async def verify(self, token: str) -> Principal:
        digest = key_hash(token)
        if self._static_hash is not None and hmac.compare_digest(self._static_hash, digest):
            return self._static_principal
        record = self.store.find(digest)
        if record is None:
            if not token.startswith(API_KEY_PREFIX):
                raise InvalidToken("the token is not a JWT, a Google or GitHub token, or a known API key")
            raise InvalidToken("unknown API key")
        if record.disabled:
            raise InvalidToken("this API key has been revoked")
        expires_at = record.expires.timestamp() if record.expires else None
        if expires_at is not None and expires_at <= self.clock():
            raise InvalidToken("this API key has expired")
        return Principal(
            provider=PROVIDER,
            subject=record.id,
            tenant_id=record.tenant,
            permissions=record.permissions,
            expires_at=expires_at,
        )
