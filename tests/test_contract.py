"""The contract module: tenant ids, permissions and the identity header round trip."""

import pytest

from mcp_pa.core import contract
from mcp_pa.core.contract import Identity

VALID_TENANT_IDS = ["a", "z", "example_com", "a1", "a_", "u___3f2a9c", "t" + "x" * 47]
INVALID_TENANT_IDS = {
    "empty": "",
    "upper-case-first": "Acme",
    "upper-case-inside": "acMe",
    "leading-digit": "1abc",
    "leading-underscore": "_abc",
    "dash": "a-b",
    "dot": "a.b",
    "quote": "a'b",
    "space": "a b",
    "trailing-newline": "abc\n",
    "non-ascii": "caf\u00e9",
    "49-characters": "t" + "x" * 48,
}


@pytest.mark.parametrize("tenant", VALID_TENANT_IDS)
def test_valid_tenant_ids_are_accepted(tenant: str) -> None:
    assert contract.is_valid_tenant_id(tenant)
    assert contract.tenant_schema(tenant) == f"tenant_{tenant}"


@pytest.mark.parametrize("tenant", list(INVALID_TENANT_IDS.values()), ids=list(INVALID_TENANT_IDS))
def test_invalid_tenant_ids_are_refused(tenant: str) -> None:
    # Each id breaks exactly one part of ^[a-z][a-z0-9_]{0,47}$, so a looser rule lets one through.
    assert not contract.is_valid_tenant_id(tenant)
    with pytest.raises(ValueError, match="invalid tenant id"):
        contract.tenant_schema(tenant)


@pytest.mark.parametrize("reserved", ["public", "pg_catalog", "information_schema"])
def test_tenant_ids_named_like_postgres_schemas_stay_inside_the_tenant_prefix(reserved: str) -> None:
    # They match the pattern, but become tenant_public etc., never the real schemas.
    assert contract.tenant_schema(reserved) == f"tenant_{reserved}"


def test_identity_headers_round_trip_with_unicode_name() -> None:
    ident = Identity("google:1", "example_com", frozenset({"write", "read"}), "google", "a@example.com", "Zoë Ünïcode, Jr.")
    headers = ident.to_headers()
    assert headers["x-mcp-permissions"] == "read,write"
    assert headers["x-mcp-name"].isascii()
    assert Identity.from_headers(headers) == ident


def test_identity_without_tenant_header_is_refused() -> None:
    with pytest.raises(ValueError, match="x-mcp-tenant-id"):
        Identity.from_headers({"x-mcp-user-id": "u", "x-mcp-permissions": "read", "x-mcp-provider": "apikey"})


def test_every_tool_has_exactly_one_permission() -> None:
    tools = contract.READ_TOOLS + contract.WRITE_TOOLS + contract.ADMIN_TOOLS
    assert len(tools) == len(set(tools)) == len(contract.TOOL_PERMISSIONS) == 38
    assert contract.required_permission("tools/call", "list_audit_events") == "admin"
    assert contract.required_permission("tools/call", "create_todo") == "write"
    assert contract.required_permission("tools/list", None) is None
