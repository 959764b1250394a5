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

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from authz_service.config_files import WatchedFile, bool_value, permissions_value
from authz_service.errors import InvalidToken
from authz_service.providers import Principal
from mcp_pa.core.contract import API_KEY_PREFIX, PERMISSIONS, is_valid_tenant_id, parse_permissions
from mcp_pa.core.logs import fingerprint

PROVIDER = "apikey"
DEFAULT_KEY_ID = "default"
DEFAULT_KEY_TENANT = "default"
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as the keys file describes it (never the key itself)."""

    id: str
    sha256: str
    tenant: str
    permissions: frozenset[str]
    expires: dt.datetime | None = None
    disabled: bool = False


def _parse_time(value: Any, what: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{what}: expires {value!r} is not an ISO 8601 date or datetime") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _record(raw: Any, index: int) -> KeyRecord:
    where = f"key #{index + 1}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping with id, sha256, tenant, permissions")
    key_id = str(raw.get("id", ""))
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"{where}: id {key_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    where = f"key {key_id!r}"
    digest = str(raw.get("sha256", "")).lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise ValueError(f"{where}: sha256 must be 64 hex digits")
    tenant = str(raw.get("tenant", ""))
    if not is_valid_tenant_id(tenant):
        raise ValueError(f"{where}: tenant {tenant!r} is not a valid tenant id")
    permissions = permissions_value(raw.get("permissions", "read,write"), where)
    disabled = bool_value(raw.get("disabled", False), f"{where}: disabled")
    return KeyRecord(key_id, digest, tenant, permissions, _parse_time(raw.get("expires"), where), disabled)


def parse_keys(text: str) -> dict[str, KeyRecord]:
    """Records by hash from keys-file text (YAML or JSON); raises ValueError with the reason."""
    try:
        data = yaml.safe_load(text) if text.strip() else []
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML/JSON: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("keys", [])
    if not isinstance(data, list):
        raise ValueError("expected a list of keys (top-level or under 'keys:')")
    records: dict[str, KeyRecord] = {}
    ids: set[str] = set()
    for index, raw in enumerate(data):
        record = _record(raw, index)
        if record.id in ids or record.sha256 in records:
            raise ValueError(f"key {record.id!r}: duplicate id or hash")
        ids.add(record.id)
        records[record.sha256] = record
    return records


class KeyStore:
    """The keys file's records, re-read when the file changes; the last good set survives errors."""

    def __init__(self, path: Path | None, on_change: Callable[[], None] | None = None) -> None:
        self.path = path
        self.on_change = on_change
        self._file = (
            WatchedFile(path, parse_keys, setting="MCP_HTTP_API_KEYS_FILE", what="keys file", on_change=self._changed)
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
        """Re-read the file if it changed (see WatchedFile)."""
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

    def __init__(self, static_key: str | None, store: KeyStore) -> None:
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
        if expires_at is not None and expires_at <= time.time():
            raise InvalidToken("this API key has expired")
        return Principal(
            provider=PROVIDER,
            subject=record.id,
            tenant_id=record.tenant,
            permissions=record.permissions,
            expires_at=expires_at,
        )


# ---- `mcp-pa api-key create` -------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)([dhm])$")


def parse_expires(value: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """`90d`, `12h`, `30m`, or an ISO 8601 date/datetime (UTC when no offset is given)."""
    if not value:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    match = _DURATION.fullmatch(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now + dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    parsed = _parse_time(value, "--expires")
    assert parsed is not None
    if parsed <= now:
        raise ValueError(f"--expires {value!r} is in the past")
    return parsed


def _write_private(path: Path, text: str) -> None:
    """Replace path atomically with a 0600 file (the reloader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cli_create(args: argparse.Namespace) -> int:
    """Make a key, append its hash to the keys file, print the key once on stdout."""
    from mcp_pa.core.settings import get_settings

    if not _KEY_ID.fullmatch(args.id):
        raise ValueError(f"--id {args.id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if not is_valid_tenant_id(args.tenant):
        raise ValueError(f"--tenant {args.tenant!r} must match ^[a-z][a-z0-9_]{{0,47}}$")
    permissions = parse_permissions(args.permissions)
    if not permissions:
        raise ValueError("--permissions needs at least one of admin, read, write")
    expires = parse_expires(args.expires)
    path = Path(args.file) if args.file else get_settings().api_keys_file
    if path is None:
        raise ValueError("no keys file: pass --file or set MCP_HTTP_API_KEYS_FILE")
    text = path.read_text() if path.exists() else ""
    try:
        existing = parse_keys(text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}; fix the file before adding keys") from exc
    if any(r.id == args.id for r in existing.values()):
        raise ValueError(f"{path} already has a key with id {args.id!r}")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    entries: list[dict[str, Any]] = [
        {
            "id": r.id,
            "sha256": r.sha256,
            "tenant": r.tenant,
            "permissions": sorted(r.permissions),
            **({"expires": r.expires.isoformat()} if r.expires else {}),
            **({"disabled": True} if r.disabled else {}),
        }
        for r in existing.values()
    ]
    entry: dict[str, Any] = {"id": args.id, "sha256": key_hash(key), "tenant": args.tenant, "permissions": sorted(permissions)}
    if expires:
        entry["expires"] = expires.isoformat()
    entries.append(entry)
    if path.suffix == ".json":
        _write_private(path, json.dumps({"keys": entries}, indent=2) + "\n")
    else:
        _write_private(path, yaml.safe_dump({"keys": entries}, sort_keys=False))
    print(key)
    print(f"stored key {args.id!r} ({fingerprint(key)}) for tenant {args.tenant} in {path}; it is shown only once", file=sys.stderr)
    return 0
