"""One normalisation of email domains and addresses, applied before every tenancy comparison.

Lower case, IDNA (UTS 46, non-transitional: `Bücher.example` → `xn--bcher-kva.example`) and
trailing dots removed, so `x@spam.example.` meets `denied_domains: [spam.example]` and
`a@gmail.com.` is as personal as `a@gmail.com`. The tenants file, the provider settings and
every verified email pass through here; nothing compares a raw domain.
"""

from __future__ import annotations

import idna


def normalise_domain(domain: str) -> str | None:
    """The comparable form of a domain, or None when it is not a valid domain name."""
    text = domain.strip().rstrip(".").lower()
    if not text or ".." in text:
        return None
    try:
        return idna.encode(text, uts46=True, transitional=False).decode("ascii").rstrip(".")
    except (idna.IDNAError, UnicodeError):
        return None


def email_domain(email: str) -> str | None:
    """The normalised domain of an email address, or None when it has none usable."""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return None
    return normalise_domain(domain)


def normalise_email(email: str) -> str | None:
    """`Local@Domain.` → `local@domain` with the domain normalised; None when unusable."""
    local, _, _ = email.strip().rpartition("@")
    domain = email_domain(email.strip())
    return f"{local.lower()}@{domain}" if domain else None


def normalise_label(label: str) -> str:
    """An admin entry of the tenants file: an email (normalised) or a user id (lower case)."""
    text = label.strip()
    if "@" in text and ":" not in text.split("@", 1)[0]:
        return normalise_email(text) or text.lower()
    return text.lower()
