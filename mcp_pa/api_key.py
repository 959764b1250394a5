"""`mcp-pa api-key create`: make an API key, store only its hash in the keys file, print the key once.

A command above the authz service: it writes the file format the service reads
(`authz_service.config_files`), and the service picks the new key up when the file changes.
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
from authz_service.providers.apikey import key_hash
from mcp_pa.core.contract import API_KEY_PREFIX, TENANT_ID_PATTERN, is_valid_tenant_id, parse_permissions
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


def create(args: argparse.Namespace) -> int:
    """Make a key, append its hash to the keys file, print the key once on stdout."""
    if not KEY_ID.fullmatch(args.id):
        raise ValueError(f"--id {args.id!r} must be {KEY_ID_RULE}")
    if not is_valid_tenant_id(args.tenant):
        raise ValueError(f"--tenant {args.tenant!r} must match {TENANT_ID_PATTERN.pattern}")
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
