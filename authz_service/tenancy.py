"""Phase 3: which tenant a verified principal belongs to (MCP_HTTP_TENANTS_FILE, YAML).

First match wins: API key record → explicit domain map → personal email domains (a personal
tenant per user) → other verified domains (a tenant derived from the domain). An unverified or
missing email always means the personal tenant.

Only an issuer the domain's owner controls places a user in a domain tenant (the map's or the
derived one): Google when the token's `hd` equals the email's domain; an OIDC issuer or Auth0
for the domains configured for it (`"domains"` in MCP_HTTP_OIDC_PROVIDERS, MCP_HTTP_AUTH0_DOMAINS);
any provider named in the tenant's `issuers` (the only way for GitHub). Anyone else with that
email gets their personal tenant. Every domain is normalised first (authz_service.domains). The
file::

    domains:                 # explicit map: email domain → tenant id
      acme.com: acme
      acme.co.uk: acme
    personal_domains: [example.net]   # added to the built-in list (gmail.com, outlook.com, …)
    denied_domains: [spam.example]    # verified emails of these domains are refused (403)
    tenants:
      acme:
        default_permissions: [read]   # default read,write
        admins: [alice@acme.com, "github:583231"]   # emails or user ids; they get admin
        issuers: [google, github]     # also trust these providers for acme's domains
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
import time
from pathlib import Path
from typing import Callable

from authz_service.config_files import ReloadableFile, parse_tenants
from authz_service.domains import email_domain
from authz_service.errors import AccessDenied
from authz_service.models import Principal, TenantsConfig

MAX_TENANT_ID = 48
HASHED_SEPARATOR = "___"
HASH_CHARS = 16  # 64 bits of SHA-256: collisions need ~2^32 distinct domains
PERSONAL_PREFIX = "u"

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


def watch_tenants(path: Path | None, clock: Callable[[], float] = time.monotonic) -> ReloadableFile[TenantsConfig] | None:
    """The tenants file, re-read when it changes (None when none is configured)."""
    if path is None:
        return None
    return ReloadableFile(path, parse_tenants, setting="MCP_HTTP_TENANTS_FILE", what="tenants file", clock=clock)


def verified_domain(principal: Principal) -> str | None:
    """The normalised domain of the principal's verified email (None when unverified or unusable)."""
    if not (principal.email and principal.email_verified):
        return None
    return email_domain(principal.email)


def vouches_for(principal: Principal, domain: str, tenant_id: str, config: TenantsConfig) -> bool:
    """Whether the principal's issuer may speak for `domain` in `tenant_id` (tenancy and admin emails)."""
    return domain in principal.vouched_domains or principal.provider in config.policy(tenant_id).issuers


def resolve_tenant(principal: Principal, config: TenantsConfig) -> str:
    """The tenant id of a principal; raises AccessDenied for a denied domain or suspended tenant."""
    if principal.tenant_id is not None:
        tenant = principal.tenant_id
    else:
        tenant = personal_tenant(principal.user_id)
        domain = verified_domain(principal)
        if domain is not None:
            if domain in config.denied_domains:
                raise AccessDenied(f"accounts of the domain {domain} are not allowed on this server")
            if domain in config.domains:
                candidate: str | None = config.domains[domain]
            elif domain in config.personal_domains:
                candidate = None
            else:
                candidate = derive_domain_tenant(domain)
            if candidate is not None and vouches_for(principal, domain, candidate, config):
                tenant = candidate
    if config.policy(tenant).suspended:
        raise AccessDenied(f"the tenant {tenant} is suspended; contact its administrator")
    return tenant
