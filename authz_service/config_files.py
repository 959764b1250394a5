"""The files the service reads, the keys file and the tenants file: their schemas and reloading.

Both are YAML (JSON is YAML too) validated by pydantic models; a ValueError names where in the
file the bad value is (`keys[2].tenant: ...`), so a start-up error or a reload log line tells the
operator exactly what to fix. `ReloadableFile` re-reads a file when it changes and keeps the
last good version when the new one is broken.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from pathlib import Path
from typing import Annotated, Any, Callable, Generic, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from authz_service.domains import normalise_domain, normalise_label
from authz_service.models import BUILTIN_PERSONAL_DOMAINS, KeyRecord, TenantPolicy, TenantsConfig
from mcp_pa.core.contract import DEFAULT_USER_PERMISSIONS, TENANT_ID_PATTERN, is_valid_tenant_id, parse_permissions

log = logging.getLogger("authz.files")

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
RELOAD_INTERVAL = 1.0  # seconds between stat() calls of a reloadable file
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KEY_ID_RULE = "1-64 letters, digits, '.', '_' or '-'"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
ISSUER_NAME = re.compile(r"^(?:google|auth0|github|oidc-[a-z][a-z0-9_-]{0,31})$")
ISSUER_NAME_RULE = "google, auth0, github or oidc-<name> as in MCP_HTTP_OIDC_PROVIDERS"


class ReloadableFile(Generic[T]):
    """A parsed file, re-read when its mtime or size changes (stat() at most once per interval).

    At start a missing or broken file raises ValueError naming `setting`; later, a broken or
    vanished file is logged as an error and `value` keeps the last good version. `clock` is
    injectable so tests move time instead of sleeping.
    """

    def __init__(
        self,
        path: Path,
        parse: Callable[[str], T],
        *,
        setting: str,
        what: str,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.parse = parse
        self.what = what
        self.on_change = on_change
        self.clock = clock
        self._stamp: tuple[int, int] | None = None
        self._checked_at = clock()
        try:
            self.value: T = self._read()
        except ValueError as exc:
            raise ValueError(f"{setting}={path}: {exc}") from exc
        log.info(f"{what} loaded", extra={"path": str(path)})

    def _read(self) -> T:
        """Parse the file and remember its stamp; ValueError says why it is unusable."""
        try:
            stat = self.path.stat()
            self._stamp = (stat.st_mtime_ns, stat.st_size)
            return self.parse(self.path.read_text())
        except FileNotFoundError:
            raise ValueError("does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(str(exc)) from exc

    def _unchanged(self) -> bool:
        try:
            stat = self.path.stat()
        except OSError:
            return False
        return (stat.st_mtime_ns, stat.st_size) == self._stamp

    def maybe_reload(self) -> None:
        """Re-read the file if it changed; stat() at most once per RELOAD_INTERVAL."""
        now = self.clock()
        if now - self._checked_at < RELOAD_INTERVAL:
            return
        self._checked_at = now
        if self._unchanged():
            return
        try:
            value = self._read()
        except ValueError as exc:
            log.error(f"{self.what} is invalid; keeping the last good version", extra={"path": str(self.path), "reason": str(exc)})
            return
        self.value = value
        log.info(f"{self.what} loaded", extra={"path": str(self.path)})
        if self.on_change is not None:
            self.on_change()


# ---- field types shared by both files ------------------------------------------------------

def parse_time(value: object) -> dt.datetime | None:
    """A YAML timestamp, date or ISO 8601 text as an aware datetime (UTC when no offset is given)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or datetime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _permissions(raw: object) -> frozenset[str]:
    # A YAML list or the `read,write` form the command line uses.
    return parse_permissions(",".join(map(str, raw)) if isinstance(raw, list) else str(raw))


def _tenant_id(value: object) -> str:
    if not isinstance(value, str) or not is_valid_tenant_id(value):
        raise ValueError(f"{value!r} is not a valid tenant id ({TENANT_ID_PATTERN.pattern})")
    return value


def _lower_list(value: object) -> object:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip().lower() for v in value]
    return value  # pydantic reports the wrong type with its place


def _none_is_empty_list(value: object) -> object:
    return [] if value is None else value


def _none_is_empty_mapping(value: object) -> object:
    return {} if value is None else value


def _domain(value: object) -> str:
    normalised = normalise_domain(value) if isinstance(value, str) else None
    if normalised is None:
        raise ValueError(f"{value!r} is not a valid domain name")
    return normalised


def _domain_list(value: object) -> object:
    if value is None:
        return []
    return [_domain(v) for v in value] if isinstance(value, list) else value


def _admin_list(value: object) -> object:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [normalise_label(v) for v in value]
    return _lower_list(value)


def _issuer(value: object) -> str:
    if not isinstance(value, str) or not ISSUER_NAME.fullmatch(value.strip().lower()):
        raise ValueError(f"{value!r} is not a provider name ({ISSUER_NAME_RULE})")
    return value.strip().lower()


Permissions = Annotated[frozenset[str], BeforeValidator(_permissions)]
TenantId = Annotated[str, BeforeValidator(_tenant_id)]
LowerStrings = Annotated[list[str], BeforeValidator(_lower_list)]
Domain = Annotated[str, BeforeValidator(_domain)]
Domains = Annotated[list[str], BeforeValidator(_domain_list)]
Admins = Annotated[list[str], BeforeValidator(_admin_list)]
Issuer = Annotated[str, BeforeValidator(_issuer)]

_MESSAGES = {
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "bool_type": "must be true or false",
    "missing": "is required",
    "extra_forbidden": "unknown key",
}


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # a bad mapping key: its place already names it
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "file"


def validate(model: type[M], data: object) -> M:
    """`model` from parsed YAML; ValueError lists every problem as `place: what is wrong`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            message = _MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{_where(error['loc'])}: {message}")
        raise ValueError("; ".join(problems)) from None


def load_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML/JSON: {exc}") from exc


# ---- the keys file ----------------------------------------------------------------------------

class KeyEntry(BaseModel):
    """One record of the keys file; fields other than these are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]
    sha256: Annotated[str, BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)]
    tenant: TenantId
    permissions: Permissions = frozenset({"read", "write"})
    expires: Annotated[dt.datetime | None, BeforeValidator(parse_time)] = None
    disabled: StrictBool = False

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not KEY_ID.fullmatch(value):
            raise ValueError(f"{value!r} must be {KEY_ID_RULE}")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256_HEX.fullmatch(value):
            raise ValueError("must be 64 hex digits (the SHA-256 of the key)")
        return value

    def record(self) -> KeyRecord:
        return KeyRecord(self.id, self.sha256, self.tenant, self.permissions, self.expires, self.disabled)


class KeysFile(BaseModel):
    """The keys file: a list of records, top-level or under `keys:`."""

    keys: list[KeyEntry] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _top_level_list(cls, data: object) -> object:
        if data is None:
            return {}
        return {"keys": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _unique(self) -> KeysFile:
        ids: set[str] = set()
        hashes: set[str] = set()
        for index, entry in enumerate(self.keys):
            if entry.id in ids or entry.sha256 in hashes:
                raise ValueError(f"keys[{index}] ({entry.id!r}) is a duplicate id or hash")
            ids.add(entry.id)
            hashes.add(entry.sha256)
        return self


def parse_keys(text: str) -> dict[str, KeyRecord]:
    """Records by hash from keys-file text (YAML or JSON); raises ValueError naming the field."""
    parsed = validate(KeysFile, load_yaml(text))
    return {entry.sha256: entry.record() for entry in parsed.keys}


# ---- the tenants file ---------------------------------------------------------------------------

class TenantEntry(BaseModel):
    """One tenant's settings under `tenants:`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    default_permissions: Permissions = frozenset(DEFAULT_USER_PERMISSIONS)
    admins: Admins = Field(default_factory=list)
    suspended: StrictBool = False
    # Providers trusted to place users of this tenant's domains here (and make them admins),
    # beyond the rule of docs/authz.md: e.g. [google] keeps consumer Google accounts of acme.com.
    issuers: Annotated[list[Issuer], BeforeValidator(_none_is_empty_list)] = Field(default_factory=list)


class TenantsFile(BaseModel):
    """The tenants file; an unknown top-level key is refused (most likely a typo)."""

    model_config = ConfigDict(extra="forbid")

    domains: Annotated[dict[Domain, TenantId], BeforeValidator(_none_is_empty_mapping)] = Field(default_factory=dict)
    personal_domains: Domains = Field(default_factory=list)
    denied_domains: Domains = Field(default_factory=list)
    tenants: Annotated[dict[TenantId, TenantEntry], BeforeValidator(_none_is_empty_mapping)] = Field(default_factory=dict)

    @field_validator("tenants", mode="before")
    @classmethod
    def _empty_entries(cls, value: object) -> object:
        # `acme:` with nothing under it is a tenant with the defaults.
        return {k: {} if v is None else v for k, v in value.items()} if isinstance(value, dict) else value

    def config(self) -> TenantsConfig:
        return TenantsConfig(
            domains=dict(self.domains),
            personal_domains=BUILTIN_PERSONAL_DOMAINS | frozenset(self.personal_domains),
            denied_domains=frozenset(self.denied_domains),
            tenants={
                t: TenantPolicy(e.default_permissions, frozenset(e.admins), e.suspended, frozenset(e.issuers))
                for t, e in self.tenants.items()
            },
        )


def parse_tenants(text: str) -> TenantsConfig:
    """Parse tenants-file text; raises ValueError naming the bad entry."""
    data = load_yaml(text)
    if data is not None and not isinstance(data, dict):
        raise ValueError("expected a mapping with domains, personal_domains, denied_domains, tenants")
    return validate(TenantsFile, data or {}).config()
