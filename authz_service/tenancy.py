"""Phase 3: which tenant a verified principal belongs to (MCP_HTTP_TENANTS_FILE, YAML).

First match wins: API key record → explicit domain map → personal email domains (a personal
tenant per user) → other verified domains (a tenant derived from the domain). An unverified or
missing email always means the personal tenant. The file::

    domains:                 # explicit map: email domain → tenant id
      acme.com: acme
      acme.co.uk: acme
    personal_domains: [example.net]   # added to the built-in list (gmail.com, outlook.com, …)
    denied_domains: [spam.example]    # verified emails of these domains are refused (403)
    tenants:
      acme:
        default_permissions: [read]   # default read,write
        admins: [alice@acme.com, "github:583231"]   # emails or user ids; they get admin
        suspended: false              # true → every member gets 403

The file is re-read when it changes (checked at most once a second) and every cached identity
is then resolved afresh; a broken new version is logged and the last good one stays in force.

Derived tenant ids are injective. A plain LDH domain that starts with a letter and fits in 48
characters maps '.' → '_' and '-' → '__' (`example.com` → `example_com`, `my-co.com` →
`my__co_com`): labels never start or end with '-' and never are empty, so an odd run of
underscores is always one dot and an even run is hyphens, and the mapping can be reversed.
Every other domain (underscores, digits first, IDN, too long) becomes
`<readable prefix>___<hash>`; a run of three underscores never occurs in a plain id, so the two
forms cannot meet. Personal tenants are `u___<hash of user id>`, inside the hashed form.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from authz_service.config_files import WatchedFile, bool_value, permissions_value
from authz_service.errors import AccessDenied
from authz_service.providers import Principal
from mcp_pa.core.contract import DEFAULT_USER_PERMISSIONS, is_valid_tenant_id

MAX_TENANT_ID = 48
HASHED_SEPARATOR = "___"
HASH_CHARS = 16  # 64 bits of SHA-256: collisions need ~2^32 distinct domains
PERSONAL_PREFIX = "u"

BUILTIN_PERSONAL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
        "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com",
        "yandex.com", "yandex.ru", "zoho.com", "fastmail.com", "hey.com", "qq.com", "163.com",
        "naver.com", "users.noreply.github.com",
    }
)

_LDH_DOMAIN = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


def _hashed(prefix_source: str, kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:HASH_CHARS]
    prefix = re.sub(r"[^a-z0-9]+", "_", prefix_source.lower()).strip("_")
    prefix = re.sub(r"_+", "_", prefix)
    if not prefix or not prefix[0].isalpha():
        prefix = "d" + (f"_{prefix}" if prefix else "")
    prefix = prefix[: MAX_TENANT_ID - len(HASHED_SEPARATOR) - HASH_CHARS].rstrip("_")
    return f"{prefix}{HASHED_SEPARATOR}{digest}"


def derive_domain_tenant(domain: str) -> str:
    """The tenant id of an email domain (injective; see the module docstring)."""
    domain = domain.lower().rstrip(".")
    if _LDH_DOMAIN.fullmatch(domain):
        plain = domain.replace("-", "__").replace(".", "_")
        if len(plain) <= MAX_TENANT_ID:
            return plain
    return _hashed(domain, "domain", domain)


def personal_tenant(user_id: str) -> str:
    """The personal tenant of one user, e.g. `u___3f2a…`."""
    return _hashed(PERSONAL_PREFIX, "user", user_id)


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """Per-tenant settings from the tenants file."""

    default_permissions: frozenset[str] = frozenset(DEFAULT_USER_PERMISSIONS)
    admins: frozenset[str] = frozenset()
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class TenantsConfig:
    """The parsed tenants file."""

    domains: dict[str, str] = field(default_factory=dict)
    personal_domains: frozenset[str] = BUILTIN_PERSONAL_DOMAINS
    denied_domains: frozenset[str] = frozenset()
    tenants: dict[str, TenantPolicy] = field(default_factory=dict)

    def policy(self, tenant_id: str) -> TenantPolicy:
        return self.tenants.get(tenant_id) or _DEFAULT_POLICY


_DEFAULT_POLICY = TenantPolicy()


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return [v.strip().lower() for v in value]


def _tenant_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not is_valid_tenant_id(value):
        raise ValueError(f"{what}: {value!r} is not a valid tenant id (^[a-z][a-z0-9_]{{0,47}}$)")
    return value


def parse_tenants(text: str) -> TenantsConfig:
    """Parse tenants-file text; raises ValueError naming the bad entry."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("expected a mapping with domains, personal_domains, denied_domains, tenants")
    unknown = set(data) - {"domains", "personal_domains", "denied_domains", "tenants"}
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
    raw_domains = data.get("domains") or {}
    if not isinstance(raw_domains, dict):
        raise ValueError("domains must map email domains to tenant ids")
    domains = {str(d).lower(): _tenant_id(t, f"domains.{d}") for d, t in raw_domains.items()}
    tenants: dict[str, TenantPolicy] = {}
    for tenant, raw in (data.get("tenants") or {}).items():
        tenant = _tenant_id(tenant, "tenants")
        raw = raw or {}
        if not isinstance(raw, dict):
            raise ValueError(f"tenants.{tenant} must be a mapping")
        default = permissions_value(raw.get("default_permissions", list(DEFAULT_USER_PERMISSIONS)), f"tenants.{tenant}.default_permissions")
        suspended = bool_value(raw.get("suspended", False), f"tenants.{tenant}.suspended")
        admins = frozenset(_str_list(raw.get("admins"), f"tenants.{tenant}.admins"))
        tenants[tenant] = TenantPolicy(default, admins, suspended)
    return TenantsConfig(
        domains=domains,
        personal_domains=BUILTIN_PERSONAL_DOMAINS | frozenset(_str_list(data.get("personal_domains"), "personal_domains")),
        denied_domains=frozenset(_str_list(data.get("denied_domains"), "denied_domains")),
        tenants=tenants,
    )


def watch_tenants(path: Path | None) -> WatchedFile[TenantsConfig] | None:
    """The tenants file, re-read when it changes (None when none is configured)."""
    if path is None:
        return None
    return WatchedFile(path, parse_tenants, setting="MCP_HTTP_TENANTS_FILE", what="tenants file")


def resolve_tenant(principal: Principal, config: TenantsConfig) -> str:
    """The tenant id of a principal; raises AccessDenied for a denied domain or suspended tenant."""
    if principal.tenant_id is not None:
        tenant = principal.tenant_id
    elif principal.email and principal.email_verified and "@" in principal.email:
        domain = principal.email.rsplit("@", 1)[1].lower()
        if domain in config.denied_domains:
            raise AccessDenied(f"accounts of the domain {domain} are not allowed on this server")
        if domain in config.domains:
            tenant = config.domains[domain]
        elif domain in config.personal_domains:
            tenant = personal_tenant(principal.user_id)
        else:
            tenant = derive_domain_tenant(domain)
    else:
        tenant = personal_tenant(principal.user_id)
    if config.policy(tenant).suspended:
        raise AccessDenied(f"the tenant {tenant} is suspended; contact its administrator")
    return tenant
