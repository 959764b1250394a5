"""Phase 4: the permissions of an identity, and the edge check of the MCP method/tool it calls.

- API key records carry their permissions.
- Otherwise the base comes from trusted sources only: administrator-assigned permission claims
  (Auth0 RBAC `permissions`) when the token has them, else the tenant's default permissions
  (read,write unless the tenants file says so); plus admin for the tenant's listed admins, by
  user id or by a verified email whose issuer vouches for its domain (the tenancy rule).
- The token's requested `mcp:*` scopes (`scope`/`scp`) only narrow that base: `mcp:read` alone
  is read-only, and asking for `mcp:admin` never grants it. A provider configured with
  `"trust_scopes": true` puts its scopes in the grant instead (see the providers).
- Values forwarded as identity headers must not contain control characters (refused, 401).
The edge check uses `mcp_pa.core.contract.required_permission`, the table the app enforces too.
"""

from __future__ import annotations

import unicodedata

from authz_service.domains import email_domain, normalise_email
from authz_service.errors import InsufficientScope, InvalidToken
from authz_service.models import Principal, TenantsConfig
from authz_service.tenancy import vouches_for
from mcp_pa.core.contract import PERMISSION_ADMIN, PERMISSION_READ, Identity, required_permission, scope_for

_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def is_admin(principal: Principal, tenant_id: str, config: TenantsConfig) -> bool:
    admins = config.policy(tenant_id).admins
    if not admins:
        return False
    if principal.user_id.lower() in admins:
        return True
    if not (principal.email and principal.email_verified):
        return False
    email, domain = normalise_email(principal.email), email_domain(principal.email)
    return email is not None and domain is not None and email in admins and vouches_for(principal, domain, tenant_id, config)


def permissions_for(principal: Principal, tenant_id: str, config: TenantsConfig) -> frozenset[str]:
    if principal.permissions is not None:
        return principal.permissions
    base = principal.granted if principal.granted is not None else config.policy(tenant_id).default_permissions
    if is_admin(principal, tenant_id, config):
        base = base | {PERMISSION_ADMIN}
    if principal.requested is not None:
        base = base & principal.requested
    return base


def _has_control_character(value: str) -> bool:
    # isprintable() is one C-level scan; the categories are looked up only for the rare rest.
    return not value.isprintable() and any(unicodedata.category(c) in _CONTROL_CATEGORIES for c in value)


def _check_forwardable(principal: Principal, email: str | None) -> None:
    for what, value in (("subject (sub)", principal.subject), ("email", email), ("name", principal.name)):
        if value is not None and _has_control_character(value):
            raise InvalidToken(f"the identity's {what} contains a control character")


def build_identity(principal: Principal, tenant_id: str, config: TenantsConfig) -> Identity:
    """The identity asserted to the app; raises InvalidToken (control characters) or
    InsufficientScope (the token's scopes leave no permission at all)."""
    email = principal.email if principal.email_verified else None
    _check_forwardable(principal, email)
    permissions = permissions_for(principal, tenant_id, config)
    if not permissions:
        raise InsufficientScope(
            f"the token's scopes grant no permission on this server; ask for {scope_for(PERMISSION_READ)}", PERMISSION_READ
        )
    return Identity(
        user_id=principal.user_id,
        tenant_id=tenant_id,
        permissions=permissions,
        provider=principal.provider,
        email=email,
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
