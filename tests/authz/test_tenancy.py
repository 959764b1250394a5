"""Tenancy and permissions: the mapping rules, injective domain ids, personal tenants, policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz_service.config_files import parse_tenants
from authz_service.errors import AccessDenied
from authz_service.models import Principal, TenantsConfig
from authz_service.policy import permissions_for
from authz_service.tenancy import derive_domain_tenant, personal_tenant, resolve_tenant
from fakes import FakeProviders
from mcp_pa.core import contract
from tests.authz.conftest import AUTH0_AUDIENCE, GOOGLE_CLIENT, issuer, make_settings, serve


def person(
    email: str | None, verified: bool = True, subject: str = "s1", provider: str = "google", vouched: str | None = "from-email"
) -> Principal:
    """A principal whose issuer vouches for its email's domain (as a Google `hd` would), unless `vouched=None`."""
    domain = email.rsplit("@", 1)[1].rstrip(".").lower() if email and vouched == "from-email" else vouched
    return Principal(
        provider=provider, subject=subject, email=email, email_verified=verified, vouched_domains=frozenset({domain} if domain else ())
    )


def test_verified_company_domain_derives_its_tenant() -> None:
    assert resolve_tenant(person("a@example.com"), TenantsConfig()) == "example_com"


def test_hyphen_dot_and_underscore_domains_never_share_a_tenant() -> None:
    ids = {derive_domain_tenant(d) for d in ("my-co.com", "my.co.com", "my_co.com", "myco.com", "my--co.com", "my-co-com.com")}
    assert len(ids) == 6
    assert all(contract.is_valid_tenant_id(i) for i in ids)


def test_long_or_odd_domains_get_a_hashed_id_within_48_characters() -> None:
    long_domain = "a" * 40 + ".subdivision.example.com"
    for domain in (long_domain, "1password.com", "xn--bcher-kva.example", "bücher.example"):
        tenant = derive_domain_tenant(domain)
        assert contract.is_valid_tenant_id(tenant) and len(tenant) <= 48 and "___" in tenant, (domain, tenant)


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_first_label = st.from_regex(r"[a-z][a-z0-9-]{0,15}[a-z0-9]", fullmatch=True)
_domain = st.builds(lambda first, rest: ".".join([first, *rest]), _first_label, st.lists(_label, min_size=1, max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_domain, st.text(min_size=1, max_size=60)), min_size=2, max_size=2, unique=True))
def test_domain_derivation_is_injective_and_always_valid(domains: list[str]) -> None:
    a, b = (d.lower().rstrip(".") for d in domains)
    if a == b:
        return
    ta, tb = derive_domain_tenant(a), derive_domain_tenant(b)
    assert contract.is_valid_tenant_id(ta) and contract.is_valid_tenant_id(tb)
    assert ta != tb


def test_personal_domain_users_get_separate_personal_tenants() -> None:
    config = TenantsConfig()
    one = resolve_tenant(person("a@gmail.com", subject="1"), config)
    two = resolve_tenant(person("b@gmail.com", subject="2"), config)
    assert one != two and one.startswith("u___") and contract.is_valid_tenant_id(one)
    assert one == personal_tenant("google:1")


def test_unverified_email_never_places_a_user_in_a_domain_tenant() -> None:
    assert resolve_tenant(person("ceo@example.com", verified=False), TenantsConfig()) == personal_tenant("google:s1")
    assert resolve_tenant(person(None), TenantsConfig()) == personal_tenant("google:s1")


def test_explicit_domain_map_wins_over_personal_and_derived() -> None:
    config = parse_tenants("domains:\n  example.com: acme\n  gmail.com: family\ntenants:\n  family:\n    issuers: [google]\n")
    assert resolve_tenant(person("a@example.com"), config) == "acme"
    assert resolve_tenant(person("a@gmail.com"), config) == "family"


def test_api_key_record_tenant_wins_over_everything() -> None:
    p = Principal(provider="apikey", subject="ci", tenant_id="ops", permissions=frozenset({"read"}), email="x@example.com", email_verified=True)
    assert resolve_tenant(p, parse_tenants("domains:\n  example.com: acme\n")) == "ops"


def test_extra_personal_domains_extend_the_builtin_list() -> None:
    config = parse_tenants("personal_domains: [family.example]\n")
    assert resolve_tenant(person("kid@family.example"), config).startswith("u___")
    assert resolve_tenant(person("a@gmail.com"), config).startswith("u___")


def test_suspended_tenant_and_denied_domain_are_refused() -> None:
    config = parse_tenants("denied_domains: [spam.example]\ntenants:\n  example_com:\n    suspended: true\n")
    assert resolve_tenant(person("a@example.com", vouched=None), config).startswith("u___")  # not a member, so not suspended
    with pytest.raises(AccessDenied, match="suspended"):
        resolve_tenant(person("a@example.com"), config)
    with pytest.raises(AccessDenied, match="spam.example"):
        resolve_tenant(person("a@spam.example"), config)


def test_tenant_defaults_and_admins_decide_permissions() -> None:
    config = parse_tenants(
        "tenants:\n  acme:\n    default_permissions: [read]\n    admins: [boss@acme.com, 'github:42']\n"
    )
    assert permissions_for(person("dev@acme.com"), "acme", config) == {"read"}
    assert permissions_for(person("Boss@acme.com"), "acme", config) == {"read", "admin"}
    assert permissions_for(person(None, subject="42", provider="github"), "acme", config) == {"read", "admin"}
    # An unverified email claiming to be an admin is not one.
    assert permissions_for(person("boss@acme.com", verified=False), "acme", config) == {"read"}
    assert permissions_for(person("a@else.com"), "else_com", config) == set(contract.DEFAULT_USER_PERMISSIONS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("domains:\n  acme.com: Not-Valid\n", r"^domains\.acme\.com: 'Not-Valid' is not a valid tenant id"),
        ("tenants:\n  Acme:\n    suspended: false\n", r"^tenants\.Acme: 'Acme' is not a valid tenant id"),
        ("tenants:\n  acme:\n    default_permissions: [root]\n", r"^tenants\.acme\.default_permissions: unknown permission"),
        ("tenants:\n  acme:\n    suspended: maybe\n", r"^tenants\.acme\.suspended: must be true or false"),
        ("tenants:\n  acme:\n    admins: boss@acme.com\n", r"^tenants\.acme\.admins: must be a list"),
        ("surprise: 1\n", r"^surprise: unknown key"),
        ("- just\n- a list\n", "expected a mapping"),
        ("domains: [\n", "not valid YAML"),
    ],
)
def test_invalid_tenants_file_is_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tenants(text)


async def test_tenants_file_applies_end_to_end(fake: FakeProviders, tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("domains:\n  acme.com: acme\ntenants:\n  acme:\n    admins: [boss@acme.com]\n    issuers: [auth0]\n")
    client = await serve(make_settings(fake, tenants_file=tenants))
    try:
        d = await client.bearer(issuer(fake, "google").mint(GOOGLE_CLIENT, sub="t-1", email="boss@acme.com", email_verified=True, hd="acme.com"))
        assert d.headers[contract.HEADER_TENANT_ID] == "acme"
        assert d.headers[contract.HEADER_PERMISSIONS] == "admin,read,write"
        d = await client.bearer(issuer(fake, "auth0").mint(AUTH0_AUDIENCE, sub="auth0|t-2", email="x@acme.com", email_verified=True))
        assert (d.headers[contract.HEADER_TENANT_ID], d.headers[contract.HEADER_PERMISSIONS]) == ("acme", "read,write")
    finally:
        await client.close()
