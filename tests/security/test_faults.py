"""Faults in the parts the front door depends on: providers, JWKS, the authz service, PostgreSQL, files.

Each fault is injected into the running stack, traffic checks that nothing is let in and that
the client gets a clear status (503 with Retry-After, a tool error), and the test then checks
that the stack recovers on its own once the fault is gone.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import asyncpg
import pytest

from authz_service.providers.apikey import key_hash
from fakes import FakeGitHubUser
from mcp_pa.core import contract
from tests.security.conftest import (
    GITHUB_APP,
    GOOGLE_CLIENT,
    JWKS_REFETCH_COOLDOWN,
    KEYS,
    SUSPENDED_DOMAIN,
    Stack,
    api_key,
    bearer,
    keys_file_text,
    mcp_headers,
    tool_call,
)
from tests.support.processes import free_port, mcp_pa_command
from tests.support.stack import Reply

WHOAMI = json.dumps(tool_call("whoami")).encode()
ROTATIONS = 2


def whoami(stack: Stack, credential: dict[str, str]) -> Reply:
    return stack.request("POST", contract.MCP_PATH, mcp_headers(credential), WHOAMI)


def assert_unavailable(reply: Reply) -> None:
    assert reply.status == 503, (reply.status, reply.body[:300])
    assert reply.json()["error"] == "temporarily_unavailable"
    assert int(reply.headers["retry-after"]) > 0


def recovers(stack: Stack, credential: dict[str, str], timeout: float = 30.0) -> None:
    stack.wait_for(lambda: whoami(stack, credential).status == 200, timeout, "recovery to 200")


# ---- providers -----------------------------------------------------------------------------
def google_access_token(stack: Stack) -> dict[str, str]:
    token = f"ya29.{secrets.token_urlsafe(24)}"
    stack.fake.add_google_token(token, sub=f"g-{secrets.token_hex(4)}", aud=GOOGLE_CLIENT, email="ann@gmail.com")
    return bearer(token)


def github_token(stack: Stack) -> dict[str, str]:
    token = f"gho_{secrets.token_urlsafe(24)}"
    user_id = secrets.randbelow(10**6)
    stack.fake.add_github_token(
        token, FakeGitHubUser(user_id, f"u{user_id}", None, [{"email": "g@gmail.com", "primary": True, "verified": True}], [], GITHUB_APP[0])
    )
    return bearer(token)


def rotated_jwt(stack: Stack) -> dict[str, str]:
    """A token signed by a key the authz service has not seen yet: verifying it needs a JWKS fetch."""
    new_key = stack.oidc.rotate("ES256", keep_old=True)
    time.sleep(JWKS_REFETCH_COOLDOWN + 0.1)  # a fetch just before (the last case's recovery) blocks the next
    return bearer(stack.oidc_token(sub=f"o-{secrets.token_hex(4)}", key=new_key))


PROVIDER_CASES: dict[str, tuple[Callable[[Stack], dict[str, str]], str]] = {
    "google-tokeninfo": (google_access_token, "/google/tokeninfo"),
    "github-api": (github_token, "/github/"),
    "oidc-jwks-on-unknown-kid": (rotated_jwt, "/oidc/jwks"),
}
FAILURES = {"down": "closed", "slow": "hang", "5xx": 502, "rate-limited": 429, "garbage-json": "garbage"}


@pytest.fixture
def faulty(stack: Stack) -> Iterator[Callable[[str, str], None]]:
    """Inject one failure on a path prefix of the fake providers; always cleared afterwards."""

    def inject(prefix: str, failure: str) -> None:
        if failure == "garbage":
            stack.fake.garbage.add(prefix)
        elif failure == "closed":
            stack.fake.closed.add(prefix)
        else:
            stack.fake.fail(prefix, failure)

    yield inject
    stack.fake.recover()


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("provider", list(PROVIDER_CASES))
def test_provider_failure_answers_503_then_recovers(stack: Stack, faulty: Callable[[str, str], None], provider: str, failure: str) -> None:
    make_credential, prefix = PROVIDER_CASES[provider]
    credential = make_credential(stack)
    faulty(prefix, FAILURES[failure])
    assert_unavailable(whoami(stack, credential))
    assert_unavailable(whoami(stack, credential))  # still no cached allow, and never a 401
    stack.fake.recover()
    recovers(stack, credential)
    me = whoami(stack, credential).json()["result"]["structuredContent"]
    assert me["provider"] in ("google", "github", "oidc-corp")


def test_cached_identity_survives_a_provider_outage(stack: Stack, faulty: Callable[[str, str], None]) -> None:
    credential = google_access_token(stack)
    assert whoami(stack, credential).status == 200
    faulty("/google/", "closed")
    assert whoami(stack, credential).status == 200  # validated before, cached until min(exp, TTL)


# ---- JWKS rotation during traffic ----------------------------------------------------------
def test_jwks_rotation_during_traffic_loses_no_request(stack: Stack) -> None:
    issuer = stack.google
    stop = threading.Event()
    statuses: Counter[int] = Counter()

    def traffic() -> None:
        while not stop.is_set():
            # A new subject each time: a fresh token that must be verified, never a cache hit.
            token = issuer.mint(GOOGLE_CLIENT, sub=f"rot-{secrets.token_hex(6)}", email="rot@gmail.com", email_verified=True)
            statuses[whoami(stack, bearer(token)).status] += 1

    fetches_before = stack.fake.count("/google/jwks")
    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(traffic)
        for _ in range(ROTATIONS):
            # Spaced past the unknown-kid cooldown: inside it, a brand-new kid is refused (401)
            # by design, so that a flood of made-up kids cannot hammer the issuer.
            time.sleep(2 * JWKS_REFETCH_COOLDOWN + 0.2)
            issuer.rotate("RS256", keep_old=True)  # tokens signed a moment ago stay verifiable
        time.sleep(1.0)
        stop.set()
    assert set(statuses) == {200}, statuses
    assert statuses[200] >= 20, statuses
    fetches = stack.fake.count("/google/jwks") - fetches_before
    assert ROTATIONS <= fetches <= 2 * ROTATIONS, f"{fetches} JWKS fetches for {ROTATIONS} rotations"


def test_unknown_kid_flood_fetches_the_key_set_at_most_once_per_cooldown(stack: Stack) -> None:
    before = stack.fake.count("/google/jwks")
    for i in range(15):
        forged = stack.google.key.sign(stack.google.claims(GOOGLE_CLIENT, sub="flood"), {"kid": f"flood-{i}-{secrets.token_hex(3)}"})
        assert whoami(stack, bearer(forged)).status == 401
    assert stack.fake.count("/google/jwks") - before <= 3


# ---- load helpers ------------------------------------------------------------------------
class Load:
    """Worker threads sending one kind of request until stopped; every outcome is recorded."""

    def __init__(self, send: Callable[[int], Any], workers: int = 3) -> None:
        self.outcomes: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._send = send
        self._pool = ThreadPoolExecutor(workers)
        self._futures = [self._pool.submit(self._run, w) for w in range(workers)]

    def _run(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            outcome = self._send(worker * 100_000 + n)
            n += 1
            with self._lock:
                self.outcomes.append((time.monotonic(), outcome))

    def since(self, moment: float) -> list[Any]:
        with self._lock:
            return [o for t, o in self.outcomes if t >= moment]

    def stop(self) -> list[Any]:
        self._stop.set()
        for future in self._futures:
            future.result(timeout=60)  # a worker's exception fails the test here
        self._pool.shutdown()
        return [o for _, o in self.outcomes]


# ---- the authz service killed during load ------------------------------------------------
def test_authz_killed_during_load_gives_503_then_recovers(stack: Stack) -> None:
    load = Load(lambda _: whoami(stack, api_key("alice")).status)
    try:
        stack.wait_for(lambda: 200 in load.since(0), 30, "traffic to flow")
        os.killpg(stack.authz.proc.pid, signal.SIGKILL)
        stack.authz.proc.wait(10)
        killed_at = time.monotonic()
        stack.wait_for(lambda: 503 in load.since(killed_at), 30, "Envoy to answer 503")
        stack.restart_authz()
        restarted_at = time.monotonic()
        stack.wait_for(lambda: load.since(restarted_at)[-3:] == [200] * 3, 30, "200 again after the restart")
    finally:
        statuses = load.stop()
    assert set(statuses) <= {200, 503}, Counter(statuses)


# ---- PostgreSQL stopped and restarted during load ----------------------------------------
def create_todo(stack: Stack, n: int) -> tuple[str, int, Any]:
    title = f"pgfault-{n}-{secrets.token_hex(3)}"
    reply = stack.rpc(api_key("pgfault"), tool_call("create_todo", {"title": title}))
    if reply.status != 200:
        return title, reply.status, reply.body[:200]
    result = reply.json()["result"]
    if result.get("isError"):
        return title, 200, ("error", result["content"][0]["text"])
    return title, 200, ("ok", result["structuredContent"]["id"])


async def tenant_rows(dsn: str, tenant: str) -> tuple[dict[str, str], set[str]]:
    """Todos (id → title) and the targets of successful create_todo audit rows, read as superuser."""
    conn = await asyncpg.connect(dsn)
    try:
        schema = contract.tenant_schema(tenant)
        todos = {str(r["id"]): r["title"] for r in await conn.fetch(f'SELECT id, title FROM "{schema}".todos')}
        audited = await conn.fetch(
            f"SELECT target_id FROM \"{schema}\".audit_events WHERE tool = 'create_todo' AND outcome = 'success'"
        )
        return todos, {r["target_id"] for r in audited}
    finally:
        await conn.close()


def test_postgres_restart_during_load_gives_clear_errors_and_loses_nothing(stack: Stack) -> None:
    assert stack.ok(api_key("pgfault"), "whoami")["tenant_id"] == "pgfault"
    load = Load(lambda n: create_todo(stack, n))
    try:
        stack.wait_for(lambda: any(o[2][0] == "ok" for o in load.since(0)), 30, "writes to succeed")
        stack.postgres.stop()
        stopped_at = time.monotonic()
        stack.wait_for(lambda: any(o[2][0] == "error" for o in load.since(stopped_at)), 30, "clear errors")
        time.sleep(1.0)
        stack.postgres.start()
        started_at = time.monotonic()
        stack.wait_for(lambda: [o[2][0] for o in load.since(started_at)][-3:] == ["ok"] * 3, 60, "writes to succeed again")
    finally:
        outcomes = load.stop()
    assert {status for _, status, _ in outcomes} == {200}, [o for o in outcomes if o[1] != 200][:3]
    errors = {text for _, _, (kind, text) in outcomes if kind == "error"}
    assert errors and all("database" in e and "try again" in e for e in errors), errors
    todos, audited = asyncio.run(tenant_rows(stack.postgres.dsn, "pgfault"))
    assert set(todos) == audited, "a todo without its audit row, or an audit row without its todo"
    created = {value for _, _, (kind, value) in outcomes if kind == "ok"}
    assert created <= set(todos)
    # A failed call's todo may exist only if the commit landed and its answer was lost with the
    # connection; then its audit row is there too (checked above), which is what matters.


# ---- keys and tenants files replaced with invalid content --------------------------------
def invalid_file_logged(stack: Stack, what: str) -> bool:
    lines = [json.loads(line) for line in stack.authz.log_path.read_text().splitlines() if line.startswith("{")]
    return any(e["level"] == "error" and e["message"] == f"{what} is invalid; keeping the last good version" for e in lines)


def test_invalid_keys_file_keeps_the_last_good_keys_and_logs_an_error(stack: Stack) -> None:
    assert whoami(stack, api_key("alice")).status == 200
    newcomer = f"mcp_sk_newcomer_{secrets.token_hex(16)}"
    record = {"id": "newcomer", "sha256": key_hash(newcomer), "tenant": "alpha", "permissions": ["read"]}
    try:
        # Valid YAML, invalid keys file (a bad tenant id): the whole new version is refused.
        stack.keys_file.write_text(keys_file_text([{**record, "tenant": "Not A Tenant"}]))
        # The file is looked at when an API key is checked (at most once a second).
        stack.wait_for(lambda: whoami(stack, api_key("alice")).status == 200 and invalid_file_logged(stack, "keys file"), 30, "the error log line")
        assert whoami(stack, {contract.HEADER_API_KEY: newcomer}).status == 401
        stack.keys_file.write_text("keys: [this is: not: yaml")
        time.sleep(1.2)  # past the reload interval
        assert whoami(stack, api_key("alice")).status == 200
        stack.keys_file.write_text(keys_file_text([record]))
        stack.wait_for(lambda: whoami(stack, {contract.HEADER_API_KEY: newcomer}).status == 200, 30, "the fixed file to load")
    finally:
        stack.keys_file.write_text(keys_file_text())
    stack.wait_for(lambda: whoami(stack, {contract.HEADER_API_KEY: newcomer}).status == 401, 30, "the newcomer key to be revoked")
    assert not any(KEYS["alice"] in line for line in stack.authz.log_path.read_text().splitlines())


def test_invalid_tenants_file_keeps_the_policy_in_force_and_a_fixed_one_applies(stack: Stack) -> None:
    member = bearer(stack.oidc_token(sub="o-frozen-2", email=f"y@{SUSPENDED_DOMAIN}"))
    assert whoami(stack, member).status == 403
    original = stack.tenants_file.read_text()
    try:
        # Valid YAML, invalid tenants file: the suspension stays in force.
        stack.tenants_file.write_text(original.replace("suspended: true", "suspended: maybe"))
        stack.wait_for(lambda: whoami(stack, member).status == 403 and invalid_file_logged(stack, "tenants file"), 30, "the error log line")
        # A valid new version lifts the suspension, cached refusal or not.
        stack.tenants_file.write_text(original.replace("suspended: true", "suspended: false"))
        stack.wait_for(lambda: whoami(stack, member).status == 200, 30, "the lifted suspension")
    finally:
        stack.tenants_file.write_text(original)
    stack.wait_for(lambda: whoami(stack, member).status == 403, 30, "the suspension again")


def test_authz_refuses_to_start_with_an_invalid_tenants_file(stack: Stack) -> None:
    bad = stack.directory / "bad-tenants.yaml"
    bad.write_text("domains: {acme.test: 'Not A Tenant'}\n")
    env = {**os.environ, **stack.authz_env, "MCP_HTTP_TENANTS_FILE": str(bad), "MCP_HTTP_PUBLIC_URL": stack.envoy.public_url}
    done = subprocess.run(
        mcp_pa_command("authz", "--listen", f"127.0.0.1:{free_port()}", "--metrics-port", "0"),
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "MCP_HTTP_TENANTS_FILE" in done.stdout + done.stderr
