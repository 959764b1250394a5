"""Phase 4: the permissions of an identity, and the edge check of the MCP method/tool it calls.

- API key records carry their permissions.
- A token that carries `mcp:*` scopes gets exactly those (the issuer's RBAC decides).
- Otherwise the tenant's default permissions (read,write unless the tenants file says so),
  plus admin for the tenant's listed admins (by verified email or user id).
The edge check uses `mcp_pa.core.contract.required_permission`, the table the app enforces too.
"""

from __future__ import annotations

from authz_service.errors import InsufficientScope
from authz_service.models import Principal, TenantsConfig
from mcp_pa.core.contract import PERMISSION_ADMIN, Identity, required_permission


def permissions_for(principal: Principal, tenant_id: str, config: TenantsConfig) -> frozenset[str]:
    if principal.permissions is not None:
        return principal.permissions
    if principal.scopes is not None:
        return principal.scopes
    policy = config.policy(tenant_id)
    labels = {principal.user_id.lower()}
    if principal.email and principal.email_verified:
        labels.add(principal.email.lower())
    if labels & policy.admins:
        return policy.default_permissions | {PERMISSION_ADMIN}
    return policy.default_permissions


def build_identity(principal: Principal, tenant_id: str, config: TenantsConfig) -> Identity:
    return Identity(
        user_id=principal.user_id,
        tenant_id=tenant_id,
        permissions=permissions_for(principal, tenant_id, config),
        provider=principal.provider,
        email=principal.email if principal.email_verified else None,
        name=principal.name,
    )


def check_edge_permission(permissions: frozenset[str], method: str | None, name: str | None) -> None:
    """Raise InsufficientScope when the named MCP method/tool needs a permission the caller lacks."""
    if not method:
        return
    needed = required_permission(method, name)
    if needed is not None and needed not in permissions:
        what = f"the tool {name}" if method == "tools/call" else f"the method {method}"
        raise InsufficientScope(f"{what} needs the {needed} permission", needed)
