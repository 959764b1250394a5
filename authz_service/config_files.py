"""Value checks shared by the files the service reads (keys file, tenants file).

Each raises ValueError naming where in the file the bad value is, so a start-up error or a
reload log line tells the operator exactly what to fix.
"""

from __future__ import annotations

from mcp_pa.contract import parse_permissions


def permissions_value(raw: object, where: str) -> frozenset[str]:
    """A permission list written as YAML list or as `read,write`."""
    try:
        return parse_permissions(",".join(map(str, raw)) if isinstance(raw, list) else str(raw))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def bool_value(raw: object, where: str) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"{where} must be true or false")
    return raw
