"""API keys: the single MCP_HTTP_API_KEY, the keys file, its reloading, and `mcp-pa api-key create`."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import stat
import subprocess
from pathlib import Path
from typing import AsyncIterator

import pytest

from authz_service.config_files import parse_keys
from authz_service.server import start
from fakes import FakeClock, FakeProviders
from mcp_pa.api_key import parse_expires
from mcp_pa.core import contract
from tests.authz.conftest import STATIC_KEY, AuthzClient, make_settings, serve
from tests.support.processes import REPO, mcp_pa_command

KEY_READER = "mcp_sk_reader-key-0123456789abcdefghijklmnopqrstuv"
KEY_DISABLED = "mcp_sk_disabled-key-0123456789abcdefghijklmnopqrst"
KEY_EXPIRED = "mcp_sk_expired-key-0123456789abcdefghijklmnopqrstu"
KEY_LATER = "mcp_sk_added-later-0123456789abcdefghijklmnopqrstu"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_yaml(*entries: str) -> str:
    return "keys:\n" + "".join(entries)


def entry(key_id: str, key: str, tenant: str = "acme", permissions: str = "[read]", extra: str = "") -> str:
    return f"  - id: {key_id}\n    sha256: {sha(key)}\n    tenant: {tenant}\n    permissions: {permissions}\n{extra}"


BASE_KEYS = keys_yaml(
    entry("reader", KEY_READER),
    entry("gone", KEY_DISABLED, extra="    disabled: true\n"),
    entry("old", KEY_EXPIRED, extra="    expires: 2020-01-01T00:00:00Z\n"),
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def keyed(fake: FakeProviders, tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[AuthzClient, Path]]:
    path = tmp_path / "keys.yaml"
    path.write_text(BASE_KEYS)
    client = AuthzClient(await start(make_settings(fake, api_keys_file=path, failure_cache_ttl=10), "127.0.0.1:0", clock=clock))
    yield client, path
    await client.close()


async def test_keys_file_record_gives_its_tenant_and_permissions(keyed: tuple[AuthzClient, Path]) -> None:
    client, _ = keyed
    d = await client.check({"x-api-key": KEY_READER})
    assert d.allowed
    assert d.headers[contract.HEADER_USER_ID] == "apikey:reader"
    assert d.headers[contract.HEADER_TENANT_ID] == "acme"
    assert d.headers[contract.HEADER_PERMISSIONS] == "read"
    d = await client.check({"x-api-key": KEY_READER, "mcp-method": "tools/call", "mcp-name": "create_todo"})
    assert d.status == 403 and 'scope="mcp:write"' in d.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("presented", "reason"),
    [
        (KEY_DISABLED, "revoked"),
        (KEY_EXPIRED, "expired"),
        ("mcp_sk_", "unknown API key"),
        (KEY_READER + "x", "unknown API key"),
        (KEY_READER[:-1], "unknown API key"),
        (KEY_READER + " ", "unknown API key"),
        (" " + KEY_READER, "API key"),
        (KEY_READER.upper(), "API key"),
        (STATIC_KEY + "=", "not a JWT"),
    ],
    ids=["disabled", "expired", "prefix-only", "extra-char", "truncated", "trailing-space", "leading-space", "wrong-case", "padded-static"],
)
async def test_bad_api_key_is_rejected_with_401(keyed: tuple[AuthzClient, Path], presented: str, reason: str) -> None:
    client, _ = keyed
    d = await client.check({"x-api-key": presented})
    assert d.status == 401, d.body
    assert reason in d.body["error_description"]


async def test_changed_keys_file_is_picked_up_and_revocation_beats_the_cache(keyed: tuple[AuthzClient, Path], clock: FakeClock) -> None:
    client, path = keyed
    assert (await client.check({"x-api-key": KEY_READER})).allowed
    assert (await client.check({"x-api-key": KEY_LATER})).status == 401  # refusal now cached
    path.write_text(keys_yaml(entry("reader", KEY_READER, extra="    disabled: true\n"), entry("later", KEY_LATER, tenant="ops", permissions="read,write")))
    clock.advance(0.5)  # the file is checked at most once per second: not yet
    assert (await client.check({"x-api-key": KEY_LATER})).status == 401
    clock.advance(0.6)
    d = await client.check({"x-api-key": KEY_LATER})
    assert d.allowed and d.headers[contract.HEADER_TENANT_ID] == "ops"
    assert (await client.check({"x-api-key": KEY_READER})).status == 401


async def test_invalid_new_keys_file_keeps_the_last_good_keys(keyed: tuple[AuthzClient, Path], clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    client, path = keyed
    path.write_text("keys:\n  - id: broken\n    sha256: nothex\n")
    clock.advance(1.1)
    with caplog.at_level(logging.ERROR, logger="authz.files"):
        assert (await client.check({"x-api-key": KEY_READER})).allowed
    # The new version was read (not merely skipped) and refused with the field it got wrong.
    reasons = [r.reason for r in caplog.records if r.name == "authz.files"]
    assert reasons == ["keys[0].sha256: must be 64 hex digits (the SHA-256 of the key); keys[0].tenant: is required"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys:\n  - id: a\n    sha256: abc\n    tenant: t\n", r"^keys\[0\]\.sha256: must be 64 hex"),
        (keys_yaml(entry("a", "k1"), entry("b", "k2", tenant="Bad-Tenant")), r"^keys\[1\]\.tenant: 'Bad-Tenant' is not a valid tenant"),
        (keys_yaml(entry("a", "k1", permissions="[superuser]")), r"^keys\[0\]\.permissions: unknown permission"),
        (keys_yaml(entry("a", "k1"), entry("a", "k2")), r"keys\[1\] \('a'\) is a duplicate"),
        (keys_yaml(entry("a", "k1", extra="    expires: someday\n")), r"^keys\[0\]\.expires: 'someday' is not an ISO 8601"),
        (keys_yaml(entry("a", "k1", extra="    disabled: maybe\n")), r"^keys\[0\]\.disabled: must be true or false"),
        ("keys:\n  - id: a\n    sha256: %s\n" % ("a" * 64), r"^keys\[0\]\.tenant: is required"),
        ("keys: {}\n", r"^keys: must be a list"),
    ],
)
def test_invalid_keys_file_is_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_keys(text)


def test_keys_file_may_be_json() -> None:
    records = parse_keys('[{"id": "j", "sha256": "%s", "tenant": "acme", "permissions": "read,write"}]' % sha("k"))
    assert records[sha("k")].permissions == {"read", "write"}


def test_expires_accepts_durations_and_dates_but_not_the_past() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_expires("90d", now) == now + dt.timedelta(days=90)
    assert parse_expires("2027-02-03", now) == dt.datetime(2027, 2, 3, tzinfo=dt.timezone.utc)
    with pytest.raises(ValueError, match="past"):
        parse_expires("2020-01-01", now)


def _create(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_HTTP_")}
    return subprocess.run(
        mcp_pa_command("api-key", "create", "--file", str(path), *args), cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


async def test_api_key_create_prints_the_key_once_and_stores_only_its_hash(fake: FakeProviders, tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    made = _create(path, "--id", "ci-bot", "--tenant", "acme", "--permissions", "read,write", "--expires", "30d")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith(contract.API_KEY_PREFIX) and len(key) > 40
    assert key not in path.read_text() and key not in made.stderr
    assert sha(key) in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = _create(path, "--id", "ci-bot", "--tenant", "acme")
    assert again.returncode == 2 and "already has a key" in again.stderr
    bad = _create(path, "--id", "x", "--tenant", "Not_Valid")
    assert bad.returncode == 2 and "--tenant" in bad.stderr
    client = await serve(make_settings(fake, api_keys_file=path))
    try:
        d = await client.bearer(key)
        assert d.allowed and d.headers[contract.HEADER_USER_ID] == "apikey:ci-bot"
        assert d.headers[contract.HEADER_PERMISSIONS] == "read,write"
    finally:
        await client.close()


def _api_key(path: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_HTTP_")}
    return subprocess.run(
        mcp_pa_command("api-key", command, "--file", str(path), *args), cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("tenant", ["public", "information_schema", "pg_catalog", "pg_toast"])
def test_api_key_create_refuses_reserved_tenants_before_writing(tmp_path: Path, tenant: str) -> None:
    path = tmp_path / "keys.yaml"
    made = _api_key(path, "create", "--id", "x", "--tenant", tenant)
    assert made.returncode == 2 and f"--tenant {tenant!r} is reserved" in made.stderr, made.stderr
    assert made.stdout == "" and not path.exists()


def test_api_key_list_shows_what_each_key_may_do_and_never_a_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(BASE_KEYS)
    listed = _api_key(path, "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert lines == [
        ["ID", "TENANT", "PERMISSIONS", "EXPIRES", "STATE"],
        ["reader", "acme", "read", "never", "active"],
        ["gone", "acme", "read", "never", "disabled"],
        ["old", "acme", "read", "2020-01-01T00:00:00+00:00", "expired"],
    ]
    assert sha(KEY_READER) not in listed.stdout + listed.stderr


async def test_revoked_key_is_refused_by_the_running_authz_service(fake: FakeProviders, tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "keys.yaml"
    made = _api_key(path, "create", "--id", "ci-bot", "--tenant", "acme")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    client = AuthzClient(await start(make_settings(fake, api_keys_file=path), "127.0.0.1:0", clock=clock))
    try:
        assert (await client.bearer(key)).allowed
        unknown = _api_key(path, "revoke", "no-such-key")
        assert unknown.returncode == 2 and "no key with id 'no-such-key' (keys: ci-bot)" in unknown.stderr
        revoked = _api_key(path, "revoke", "ci-bot")
        assert revoked.returncode == 0, revoked.stderr
        assert parse_keys(path.read_text())[sha(key)].disabled
        assert "disabled" in _api_key(path, "list").stdout
        clock.advance(1.1)  # the service re-reads the file at most once a second
        assert (await client.bearer(key)).status == 401
    finally:
        await client.close()
