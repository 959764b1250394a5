"""The pipeline's data: a credential, what a provider verified, the records of the keys and
tenants files, and the cached outcome of one credential. Plain frozen dataclasses, no behaviour
beyond derived names, so every phase can import them without importing another phase."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mcp_pa.core.contract import API_KEY_PREFIX, DEFAULT_USER_PERMISSIONS

BUILTIN_PERSONAL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
        "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com",
        "yandex.com", "yandex.ru", "zoho.com", "fastmail.com", "hey.com", "qq.com", "163.com",
        "naver.com", "users.noreply.github.com",
    }
)


@dataclass(frozen=True, slots=True)
class Credential:
    """The presented secret and how it was presented."""

    value: str
    via_api_key_header: bool

    @property
    def is_api_key(self) -> bool:
        return self.via_api_key_header or self.value.startswith(API_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class Principal:
    """What a provider verified about the caller, before tenancy and policy."""

    provider: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    # Email domains this issuer is authoritative for (Google: the token's `hd`; OIDC and Auth0:
    # their configured domains), normalised. Only these give a domain tenant or admin by email.
    vouched_domains: frozenset[str] = frozenset()
    granted: frozenset[str] | None = None  # administrator-assigned permissions (Auth0 RBAC), if any
    requested: frozenset[str] | None = None  # the token's mcp:* scopes: they only narrow the grant
    tenant_id: str | None = None  # fixed tenant (API key records)
    permissions: frozenset[str] | None = None  # fixed permissions (API key records)
    expires_at: float | None = None  # epoch seconds; bounds how long the identity may be cached
    groups: tuple[str, ...] = ()  # e.g. GitHub organisations, for policy

    @property
    def user_id(self) -> str:
        return f"{self.provider}:{self.subject}"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as the keys file describes it (never the key itself)."""

    id: str
    sha256: str
    tenant: str
    permissions: frozenset[str]
    expires: dt.datetime | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """Per-tenant settings from the tenants file."""

    default_permissions: frozenset[str] = frozenset(DEFAULT_USER_PERMISSIONS)
    admins: frozenset[str] = frozenset()
    suspended: bool = False
    issuers: frozenset[str] = frozenset()  # providers trusted to vouch for this tenant's domains (`google`, `oidc-corp`…)


_DEFAULT_POLICY = TenantPolicy()


@dataclass(frozen=True, slots=True)
class TenantsConfig:
    """The tenants file as the tenancy rules read it (the defaults when there is no file)."""

    domains: dict[str, str] = field(default_factory=dict)  # every name below is normalised (authz_service.domains)
    personal_domains: frozenset[str] = BUILTIN_PERSONAL_DOMAINS
    denied_domains: frozenset[str] = frozenset()
    tenants: dict[str, TenantPolicy] = field(default_factory=dict)

    def policy(self, tenant_id: str) -> TenantPolicy:
        return self.tenants.get(tenant_id) or _DEFAULT_POLICY


@dataclass(frozen=True, slots=True)
class Resolved:
    """A credential's outcome, cached: its serialized OK response and what the hot path reads.

    The Identity itself is not kept: its headers are inside `response`, and 100,000 cached
    identities then cost a few hundred bytes each instead of kilobytes (message objects).
    """

    response: bytes
    permissions: frozenset[str]
    provider: str
    expires_at: float | None
