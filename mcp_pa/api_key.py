"""`mcp-pa api-key create | list | revoke`: the keys file, by hand no more.

`create` makes a key, stores only its hash and prints the key once; `list` shows what each key
may do (never a hash); `revoke ID` marks a key disabled. A command above the authz service: it
writes the file format the service reads (`authz_service.config_files`), and the service picks
every change up when the file changes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from authz_service.config_files import KEY_ID, KEY_ID_RULE, parse_keys, parse_time
from authz_service.models import KeyRecord
from authz_service.providers.apikey import key_hash
from mcp_pa.core.contract import (
    API_KEY_PREFIX,
    RESERVED_TENANT_IDS,
    RESERVED_TENANT_PREFIX,
    TENANT_ID_PATTERN,
    is_reserved_tenant_id,
    is_valid_tenant_id,
    parse_permissions,
)
from mcp_pa.core.logs import fingerprint
from mcp_pa.core.settings import get_settings

_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_expires(value: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """`90d`, `12h`, `30m`, or an ISO 8601 date/datetime (UTC when no offset is given)."""
    if not value:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    match = _DURATION.fullmatch(value.strip())
    if match:
        return now + dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = parse_time(value)
    except ValueError as exc:
        raise ValueError(f"--expires {exc}") from None
    if parsed is None or parsed <= now:
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


def _keys_path(args: argparse.Namespace) -> Path:
    path = Path(args.file) if args.file else get_settings().api_keys_file
    if path is None:
        raise ValueError("no keys file: pass --file or set MCP_HTTP_API_KEYS_FILE")
    return path


def _read(path: Path) -> list[KeyRecord]:
    """The file's keys in file order; ValueError naming the file when it does not parse."""
    text = path.read_text() if path.exists() else ""
    try:
        return list(parse_keys(text).values())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}; fix the file first") from exc


def _entry(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "sha256": record.sha256,
        "tenant": record.tenant,
        "permissions": sorted(record.permissions),
        **({"expires": record.expires.isoformat()} if record.expires else {}),
        **({"disabled": True} if record.disabled else {}),
    }


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    if path.suffix == ".json":
        _write_private(path, json.dumps({"keys": entries}, indent=2) + "\n")
    else:
        _write_private(path, yaml.safe_dump({"keys": entries}, sort_keys=False))


def check_tenant(tenant: str) -> None:
    """ValueError for a tenant the app would refuse, so no key is made that can never work."""
    if not is_valid_tenant_id(tenant):
        raise ValueError(f"--tenant {tenant!r} must match {TENANT_ID_PATTERN.pattern}")
    if is_reserved_tenant_id(tenant):
        reserved = ", ".join(sorted(RESERVED_TENANT_IDS))
        raise ValueError(f"--tenant {tenant!r} is reserved by PostgreSQL ({reserved} and names starting {RESERVED_TENANT_PREFIX!r}); pick another")


def create(args: argparse.Namespace) -> int:
    """Make a key, append its hash to the keys file, print the key once on stdout."""
    if not KEY_ID.fullmatch(args.id):
        raise ValueError(f"--id {args.id!r} must be {KEY_ID_RULE}")
    check_tenant(args.tenant)
    permissions = parse_permissions(args.permissions)
    if not permissions:
        raise ValueError("--permissions needs at least one of admin, read, write")
    expires = parse_expires(args.expires)
    path = _keys_path(args)
    existing = _read(path)
    if any(r.id == args.id for r in existing):
        raise ValueError(f"{path} already has a key with id {args.id!r}")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    entry: dict[str, Any] = {"id": args.id, "sha256": key_hash(key), "tenant": args.tenant, "permissions": sorted(permissions)}
    if expires:
        entry["expires"] = expires.isoformat()
    _write(path, [*(_entry(r) for r in existing), entry])
    print(key)
    print(f"stored key {args.id!r} ({fingerprint(key)}) for tenant {args.tenant} in {path}; it is shown only once", file=sys.stderr)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    """One line per key: id, tenant, permissions, expiry, state. Never a hash or a key."""
    records = _read(_keys_path(args))
    now = dt.datetime.now(dt.timezone.utc)
    rows = [("ID", "TENANT", "PERMISSIONS", "EXPIRES", "STATE")]
    for r in records:
        state = "disabled" if r.disabled else "expired" if r.expires and r.expires <= now else "active"
        rows.append((r.id, r.tenant, ",".join(sorted(r.permissions)), r.expires.isoformat() if r.expires else "never", state))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def revoke(args: argparse.Namespace) -> int:
    """Mark the key disabled in the keys file; the authz service refuses it once it reloads the file."""
    path = _keys_path(args)
    records = _read(path)
    if not any(r.id == args.id for r in records):
        known = ", ".join(r.id for r in records) or "none"
        raise ValueError(f"{path} has no key with id {args.id!r} (keys: {known})")
    _write(path, [{**_entry(r), "disabled": True} if r.id == args.id else _entry(r) for r in records])
    print(f"revoked key {args.id!r} in {path}; the authz service refuses it from its next reload of the file", file=sys.stderr)
    return 0
