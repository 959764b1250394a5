"""The contract module: tenant ids, permissions and the identity header round trip."""

import pytest

from mcp_pa.core import contract
from mcp_pa.core.contract import Identity


@pytest.mark.parametrize("tenant", ["a", "example_com", "t" + "x" * 47])
def test_valid_tenant_ids_are_accepted(tenant: str) -> None:
    assert contract.tenant_schema(tenant) == f"tenant_{tenant}"


@pytest.mark.parametrize("tenant", ["", "A", "1abc", "a-b", "a'b", "public", "pg_catalog", "t" + "x" * 48, "a b"])
def test_invalid_tenant_ids_are_refused(tenant: str) -> None:
    # `public` and `pg_catalog` match the pattern but become tenant_public / tenant_pg_catalog,
    # never the real schemas; the others do not match at all.
    if contract.is_valid_tenant_id(tenant):
        assert contract.tenant_schema(tenant).startswith("tenant_")
    else:
        with pytest.raises(ValueError):
            contract.tenant_schema(tenant)


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
    assert len(tools) == len(set(tools)) == len(contract.TOOL_PERMISSIONS) == 26
    assert contract.required_permission("tools/call", "list_audit_events") == "admin"
    assert contract.required_permission("tools/call", "create_todo") == "write"
    assert contract.required_permission("tools/list", None) is None
