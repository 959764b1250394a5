"""Attacks through the real front door, one row each: what is sent and the status it must get.

Every request goes over TLS to Envoy, which asks the real authz service and routes to the real
app over PostgreSQL. The table is grouped as the issue lists the attacks; `ATTACKS` is the
count. Cross-tenant and cross-user access by id is a second table at the end of the module.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from authz_service.providers.jwt import LEEWAY_SECONDS
from fakes import b64url
from mcp_pa.core import contract
from mcp_pa.up.certs import ensure_dev_certs
from mcp_pa.up.envoy_config import RateLimit
from tests.security.conftest import (
    DENIED_DOMAIN,
    GOOGLE_CLIENT,
    KEYS,
    OIDC_AUDIENCE,
    SUSPENDED_DOMAIN,
    Stack,
    api_key,
    bearer,
    mcp_headers,
    new_name,
    tool_call,
)
from tests.support.forgeries import FORGERIES, Forgery, Issuers
from tests.support.stack import Envoy, Reply, assert_security_headers, start_envoy

WHOAMI = json.dumps(tool_call("whoami")).encode()
BODY_LIMIT = 8 * 1024 * 1024  # envoy/envoy.yaml, request_body_limit
SPOOFED_IDENTITY = {
    contract.HEADER_USER_ID: "google:victim",
    contract.HEADER_TENANT_ID: "beta",
    contract.HEADER_PERMISSIONS: "admin,read,write",
    contract.HEADER_PROVIDER: "google",
    contract.HEADER_EMAIL: "ceo@victim.test",
}


@dataclass(frozen=True)
class Attack:
    """One attack: `send` makes the request through Envoy; `check` looks closer at the reply."""

    id: str
    status: int
    send: Callable[[Stack], Reply]
    check: Callable[[Stack, Reply], None] | None = None


# ---- building blocks -----------------------------------------------------------------------
def whoami(headers: dict[str, str], path: str = contract.MCP_PATH) -> Callable[[Stack], Reply]:
    return lambda s: s.request("POST", path, mcp_headers(headers), WHOAMI)


def with_token(make: Callable[[Stack], str]) -> Callable[[Stack], Reply]:
    return lambda s: s.rpc(bearer(make(s)), tool_call("whoami"))


def get(path: str, headers: dict[str, str] | None = None) -> Callable[[Stack], Reply]:
    return lambda s: s.request("GET", path, headers)


def google_claims(s: Stack, **extra: Any) -> dict[str, Any]:
    return s.google.claims(GOOGLE_CLIENT, sub="g-attack", email="gina@gmail.com", email_verified=True, **extra)


def parts(token: str) -> list[str]:
    return token.split(".")


def replace_payload(token: str, **changes: Any) -> str:
    """A genuine token with its payload edited and the original signature kept."""
    header, payload, signature = parts(token)
    claims = json.loads(_unb64(payload))
    claims.update(changes)
    return f"{header}.{b64url(claims)}.{signature}"


def replace_header(token: str, **changes: Any) -> str:
    header, payload, signature = parts(token)
    fields = json.loads(_unb64(header))
    fields.update(changes)
    return f"{b64url(fields)}.{payload}.{signature}"


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def trap_untouched(s: Stack, reply: Reply) -> None:
    assert s.trap.hits == 0, "the authz service fetched a key from a URL the token named"


def bearer_challenge(error: str | None = "invalid_token") -> Callable[[Stack, Reply], None]:
    def check(s: Stack, reply: Reply) -> None:
        challenge = reply.headers.get("www-authenticate", "")
        assert challenge.startswith("Bearer "), challenge
        assert f'resource_metadata="{s.envoy.public_url}{contract.PRM_MCP_PATH}"' in challenge
        if error:
            assert f'error="{error}"' in challenge, challenge

    return check


def identity_is(user_id: str, tenant_id: str, permissions: list[str]) -> Callable[[Stack, Reply], None]:
    def check(s: Stack, reply: Reply) -> None:
        me = reply.json()["result"]["structuredContent"]
        assert (me["user_id"], me["tenant_id"], me["permissions"]) == (user_id, tenant_id, permissions)

    return check


def assert_body(reply: Reply, **expected: Any) -> None:
    body = reply.json()
    assert {k: body.get(k) for k in expected} == expected, body


def refused_as(error: str) -> Callable[[Stack, Reply], None]:
    def check(s: Stack, reply: Reply) -> None:
        assert reply.json()["error"] == error, reply.body[:300]

    return check


def accepted_then_replayed_after_expiry(s: Stack) -> Reply:
    # exp 55 s ago: inside the 60 s leeway, so accepted (and perhaps cached). Once the leeway
    # has passed, the same token (now a replay of an expired one) must be refused, cache or not.
    claims = s.google.claims(GOOGLE_CLIENT, sub="g-replay", lifetime=-55, email="r@gmail.com", email_verified=True)
    token = s.google.key.sign(claims)
    first = s.rpc(bearer(token), tool_call("whoami"))
    assert first.status == 200, first.body[:300]
    time.sleep(max(0.0, claims["exp"] + LEEWAY_SECONDS + 1.5 - time.time()))
    return s.rpc(bearer(token), tool_call("whoami"))


def oversize_body(declared: bool) -> Callable[[Stack], Reply]:
    """A body one byte over the limit: announced in content-length, or streamed in one chunk.

    Nothing more than the refused bytes is ever sent, and the chunk is left unfinished, so
    Envoy has read all of it when it answers: no unread data, no reset racing the 413.
    """

    def send(s: Stack) -> Reply:
        conn = http.client.HTTPSConnection("localhost", s.envoy.https_port, context=s.envoy.tls_context(), timeout=20)
        try:
            conn.putrequest("POST", contract.MCP_PATH)
            framing = {"content-length": str(BODY_LIMIT + 1)} if declared else {"transfer-encoding": "chunked"}
            for name, value in mcp_headers(api_key("alice"), **framing).items():
                conn.putheader(name, value)
            conn.endheaders()
            if not declared:
                conn.send(b"%x\r\n" % (BODY_LIMIT + 1) + b"x" * (BODY_LIMIT + 1))
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    return send


def many_headers(count: int) -> dict[str, str]:
    return {f"x-filler-{i}": "v" for i in range(count)}


# ---- the table ---------------------------------------------------------------------------
def issuers(s: Stack) -> Issuers:
    return Issuers(s.google, GOOGLE_CLIENT, s.auth0, s.resource, s.oidc, OIDC_AUDIENCE, s.trap.url)


def refused_because(reason: str) -> Callable[[Stack, Reply], None]:
    def check(s: Stack, reply: Reply) -> None:
        bearer_challenge()(s, reply)
        assert reason in reply.json()["error_description"], reply.body[:300]
        trap_untouched(s, reply)

    return check


def _forged(forgery: Forgery) -> Attack:
    return Attack(forgery.id, 401, with_token(lambda s: forgery.make(issuers(s))), refused_because(forgery.reason))


# The same table as tests/authz/test_jwt.py, here through Envoy.
FORGED_JWT = [_forged(f) for f in FORGERIES]

CLAIM_TAMPERING = [
    Attack("sub-swapped", 401, with_token(lambda s: replace_payload(s.google_token(), sub="victim"))),
    Attack("email-swapped-into-a-domain-tenant", 401, with_token(lambda s: replace_payload(s.oidc_token(), email="ceo@bank.test"))),
    Attack("expired-exp-extended", 401, with_token(lambda s: replace_payload(s.google_token(lifetime=-3600), exp=int(time.time()) + 3600))),
    Attack("auth0-scope-raised", 401, with_token(lambda s: replace_payload(s.auth0_token(), permissions=["mcp:admin", "mcp:read", "mcp:write"]))),
    Attack("alg-header-switched", 401, with_token(lambda s: replace_header(s.google_token(), alg="RS512"))),
    Attack(
        "signature-spliced-from-another-token", 401,
        with_token(lambda s: ".".join(parts(s.google_token(sub="a"))[:2] + parts(s.google_token(sub="b"))[2:])),
    ),
]

ISSUER_AUDIENCE = [
    Attack("google-iss-signed-by-oidc-key", 401, with_token(lambda s: s.oidc.key.sign(google_claims(s)))),
    Attack("auth0-token-for-another-resource", 401, with_token(lambda s: s.auth0.mint(["https://other.example/mcp"], sub="auth0|x"))),
    Attack("auth0-token-with-google-client-audience", 401, with_token(lambda s: s.auth0.mint(GOOGLE_CLIENT, sub="auth0|x"))),
    Attack("oidc-issuer-with-trailing-slash", 401, with_token(lambda s: s.oidc.key.sign(s.oidc.claims(OIDC_AUDIENCE) | {"iss": s.oidc.issuer + "/"}))),
    Attack("no-subject", 401, with_token(lambda s: s.google.key.sign({k: v for k, v in google_claims(s).items() if k != "sub"}))),
    Attack("not-yet-valid", 401, with_token(lambda s: s.google_token(nbf=int(time.time()) + 3600))),
]

REPLAY = [
    Attack("expired-an-hour-ago", 401, with_token(lambda s: s.google_token(lifetime=-3600)), bearer_challenge()),
    Attack("replayed-after-expiry-though-once-accepted", 401, accepted_then_replayed_after_expiry, bearer_challenge()),
]

HEADER_SPOOFING = [
    Attack("identity-headers-without-credential", 401, whoami(SPOOFED_IDENTITY), bearer_challenge(None)),
    Attack("identity-headers-upper-case", 401, whoami({k.upper(): v for k, v in SPOOFED_IDENTITY.items()})),
    Attack("identity-headers-beside-a-key", 200, whoami({**api_key("alice"), **SPOOFED_IDENTITY}), identity_is("apikey:alice", "alpha", ["read", "write"])),
    Attack("underscore-identity-header", 400, whoami({**api_key("alice"), "x_mcp_tenant_id": "beta"})),
    Attack("underscore-identity-header-on-metadata-route", 400, get(contract.PRM_MCP_PATH, {"x_mcp_user_id": "google:victim"})),
    Attack("x-envoy-original-path-to-public-route", 401, whoami({"x-envoy-original-path": contract.HEALTHZ_PATH, "x-envoy-internal": "true"})),
    Attack("x-forwarded-for-loopback", 401, whoami({"x-forwarded-for": "127.0.0.1", "x-real-ip": "127.0.0.1"})),
    Attack(
        "spoofed-permissions-for-an-admin-tool",
        403,  # refused at the edge: authz reads the tool from the body and judges the key's own permissions
        lambda s: s.rpc({**api_key("reader"), contract.HEADER_PERMISSIONS: "admin,read,write"}, tool_call("list_audit_events")),
        refused_as("insufficient_scope"),
    ),
    Attack(
        "spoofed-request-id-is-replaced",
        200,
        whoami({**api_key("alice"), contract.HEADER_REQUEST_ID: "attacker-chosen"}),
        lambda s, r: (r.headers.get(contract.HEADER_REQUEST_ID) not in (None, "attacker-chosen")) or pytest.fail("x-request-id kept"),
    ),
    Attack("identity-headers-on-metadata-route", 200, get(contract.PRM_MCP_PATH, SPOOFED_IDENTITY), lambda s, r: assert_body(r, resource=s.resource)),
    Attack(
        "identity-headers-on-root-metadata-route", 200, get(contract.PRM_PATH, SPOOFED_IDENTITY),
        lambda s, r: assert_body(r, resource=s.envoy.public_url),  # the root document's resource is the origin (RFC 9728 §3.3)
    ),
    Attack("identity-headers-on-plain-http-mcp", 301, lambda s: s.request("POST", contract.MCP_PATH, mcp_headers(SPOOFED_IDENTITY), WHOAMI, https=False)),
    Attack(
        "identity-headers-on-plain-http-healthz", 200,
        lambda s: s.request("GET", contract.HEALTHZ_PATH, SPOOFED_IDENTITY, https=False),
        lambda s, r: assert_body(r, status="ok"),
    ),
    Attack("identity-headers-on-healthz", 200, get(contract.HEALTHZ_PATH, SPOOFED_IDENTITY), lambda s, r: assert_body(r, status="ok")),
    Attack("identity-headers-on-app-readyz", 401, get("/readyz", SPOOFED_IDENTITY)),
    Attack("identity-headers-on-hidden-metrics", 404, get("/metrics", SPOOFED_IDENTITY)),
]

PATH_TRICKS = [
    Attack("fragment-in-request-line", 400, whoami({}, "/mcp#fragment")),
    Attack("encoded-slash", 401, whoami({}, "/%2Fmcp")),
    Attack("double-slash", 401, whoami({}, "//mcp")),
    Attack("dot-dot-from-public-route", 401, whoami({}, "/.well-known/oauth-protected-resource/../../mcp")),
    Attack("encoded-dot-dot-from-public-route", 401, whoami({}, "/.well-known/oauth-protected-resource%2F..%2F..%2Fmcp")),
    Attack("encoded-letters-to-hidden-metrics", 404, get("/%6detrics")),
    Attack("dot-dot-to-hidden-metrics", 404, get("/healthz/../metrics")),
    Attack("nul-byte", 400, whoami({}, "/mcp%00")),
    Attack("upper-case-path", 401, whoami({}, "/MCP")),
    Attack("public-path-in-query", 401, whoami({}, "/mcp?next=/healthz")),
]

OVERSIZE_MALFORMED = [
    Attack("header-over-32-kib", 431, whoami({**api_key("alice"), "x-big": "a" * 40_000})),
    Attack("over-100-headers", 431, whoami({**api_key("alice"), **many_headers(110)})),
    Attack("declared-body-over-8-mib", 413, oversize_body(declared=True), refused_as("request_too_large")),
    Attack("streamed-body-over-8-mib", 413, oversize_body(declared=False), refused_as("request_too_large")),
    Attack("token-over-8-kib", 401, with_token(lambda s: "a" * 9000)),
    Attack("non-ascii-api-key", 401, whoami({contract.HEADER_API_KEY: KEYS["alice"][:-1] + "\u00e9"})),
    Attack("empty-bearer", 401, whoami({contract.HEADER_AUTHORIZATION: "Bearer "})),
    Attack("basic-scheme", 401, whoami({contract.HEADER_AUTHORIZATION: "Basic YWxpY2U6c2VjcmV0"})),
    Attack("two-different-credentials", 400, whoami({**api_key("alice"), **bearer(KEYS["bob"])}), refused_as("invalid_request")),
    Attack("repeated-authorization", 400, whoami({contract.HEADER_AUTHORIZATION: f"Bearer {KEYS['alice']}, Bearer {KEYS['bob']}"})),
    Attack("malformed-json-body", 400, lambda s: s.request("POST", contract.MCP_PATH, mcp_headers(api_key("alice")), b"{not json")),
    Attack("wrong-content-type", 400, lambda s: s.request("POST", contract.MCP_PATH, mcp_headers(api_key("alice"), **{"content-type": "text/plain"}), WHOAMI)),
    Attack("no-accept", 406, lambda s: s.request("POST", contract.MCP_PATH, {**api_key("alice"), "content-type": "application/json"}, WHOAMI)),
    Attack("put-on-mcp", 405, lambda s: s.request("PUT", contract.MCP_PATH, mcp_headers(api_key("alice")), WHOAMI)),
    Attack("foreign-origin", 403, whoami({**api_key("alice"), "origin": "https://evil.example"})),
    Attack("plain-http", 301, lambda s: s.request("POST", contract.MCP_PATH, mcp_headers(api_key("alice")), WHOAMI, https=False)),
]

POLICY = [
    Attack("suspended-tenant", 403, with_token(lambda s: s.oidc_token(sub="o-frozen", email=f"x@{SUSPENDED_DOMAIN}")), refused_as("access_denied")),
    Attack("denied-domain", 403, with_token(lambda s: s.oidc_token(sub="o-evil", email=f"x@{DENIED_DOMAIN}")), refused_as("access_denied")),
    Attack("expired-api-key", 401, whoami(api_key("expired"))),
    Attack("disabled-api-key", 401, whoami(api_key("disabled"))),
    Attack(
        "read-only-key-naming-a-write-tool",
        403,
        lambda s: s.rpc(api_key("reader"), tool_call("create_todo", {"title": "x"}), **{"mcp-method": "tools/call", "mcp-name": "create_todo"}),
        bearer_challenge("insufficient_scope"),
    ),
]

ATTACKS = FORGED_JWT + CLAIM_TAMPERING + ISSUER_AUDIENCE + REPLAY + HEADER_SPOOFING + PATH_TRICKS + OVERSIZE_MALFORMED + POLICY


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
def test_attack_gets_expected_status(stack: Stack, attack: Attack) -> None:
    reply = attack.send(stack)
    assert reply.status == attack.status, f"{attack.id}: {reply.status} {reply.body[:300]!r}"
    assert reply.status != 200 or b'"isError":true' in reply.body or attack.check is not None
    if attack.check is not None:
        attack.check(stack, reply)
    assert_security_headers(reply)  # on every answer: the app's, the authz service's, Envoy's own


def test_attack_table_is_large_enough() -> None:
    assert len(ATTACKS) + len(CROSS_ACCESS) * 2 + 1 >= 45
    assert len({a.id for a in ATTACKS}) == len(ATTACKS)


# ---- API key brute force against the per-address limit -----------------------------------
BRUTE_FORCE_LIMIT = 12


@pytest.fixture(scope="module")
def limited_envoy(stack: Stack) -> Iterator[Envoy]:
    """A second Envoy in front of the same authz and app, with a small per-address bucket."""
    envoy = start_envoy(
        stack.directory / "envoy-limited",
        ensure_dev_certs(stack.directory / "tls"),
        authz_port=stack.authz.port,
        app_port=stack.app.port,
        per_address_limit=RateLimit(BRUTE_FORCE_LIMIT, 300),
    )
    yield envoy
    envoy.stop()


def test_api_key_brute_force_hits_the_per_address_limit_with_429(limited_envoy: Envoy) -> None:
    source = "127.0.0.77"
    statuses = [
        limited_envoy.request(
            "POST", contract.MCP_PATH, mcp_headers({contract.HEADER_API_KEY: f"mcp_sk_guess_{i:04d}_{'x' * 32}"}), WHOAMI, source=source
        ).status
        for i in range(BRUTE_FORCE_LIMIT + 5)
    ]
    assert statuses == [401] * BRUTE_FORCE_LIMIT + [429] * 5
    # Once limited, even the right key waits: guessing and using share the address's bucket.
    right = limited_envoy.request("POST", contract.MCP_PATH, mcp_headers(api_key("alice")), WHOAMI, source=source)
    assert right.status == 429 and right.headers["retry-after"]
    other = limited_envoy.request("POST", contract.MCP_PATH, mcp_headers(api_key("alice")), WHOAMI, source="127.0.0.78")
    assert other.status == 200


# ---- cross-tenant and cross-user access by id ---------------------------------------------
@dataclass(frozen=True)
class Victim:
    """Rows alice owns in tenant alpha."""

    project: str
    todo: str
    event: str
    document: str


@pytest.fixture(scope="module")
def victim(stack: Stack) -> Victim:
    alice = api_key("alice")
    project = stack.ok(alice, "create_project", name=new_name("secret-project"))["id"]
    todo = stack.ok(alice, "create_todo", title="alice's todo", project_id=project)["id"]
    event = stack.ok(alice, "create_calendar_event", title="alice's meeting", starts_at="2031-01-01T09:00:00Z")["id"]
    document = stack.ok(alice, "create_document", title="alice's notes", content="the launch code is 0000")["id"]
    return Victim(project, todo, event, document)


# tool → arguments built from the victim's ids
CROSS_ACCESS: dict[str, Callable[[Victim], dict[str, Any]]] = {
    "get_project": lambda v: {"project_id": v.project},
    "update_project": lambda v: {"project_id": v.project, "name": "pwned"},
    "delete_project": lambda v: {"project_id": v.project},
    "add_project_task": lambda v: {"project_id": v.project, "title": "pwned"},
    "create_todo": lambda v: {"title": "pwned", "project_id": v.project},
    "update_todo": lambda v: {"todo_id": v.todo, "title": "pwned"},
    "complete_todo": lambda v: {"todo_id": v.todo},
    "delete_todo": lambda v: {"todo_id": v.todo},
    "delete_calendar_event": lambda v: {"event_id": v.event},
    "get_document": lambda v: {"document_id": v.document, "include_data": True},
    "delete_document": lambda v: {"document_id": v.document},
}


def assert_victim_intact(stack: Stack, victim: Victim) -> None:
    alice = api_key("alice")
    project = stack.ok(alice, "get_project", project_id=victim.project)
    assert not project["name"].startswith("pwned") and project.get("tasks", []) == []
    todos = stack.ok(alice, "list_todos", project_id=victim.project)["todos"]
    assert [(t["id"], t["title"], t["status"]) for t in todos] == [(victim.todo, "alice's todo", "open")]
    events = stack.ok(alice, "list_calendar_events", start="2030-12-31T00:00:00Z", end="2031-01-02T00:00:00Z")["events"]
    assert [e["id"] for e in events] == [victim.event]
    assert stack.ok(alice, "get_document", document_id=victim.document)["title"] == "alice's notes"


@pytest.mark.parametrize("intruder", ["bob-same-tenant", "carol-other-tenant"])
@pytest.mark.parametrize("tool", list(CROSS_ACCESS))
def test_access_by_id_to_another_users_row_is_not_found(stack: Stack, victim: Victim, tool: str, intruder: str) -> None:
    credential = api_key(intruder.split("-")[0])
    result = stack.call(credential, tool, **CROSS_ACCESS[tool](victim))
    assert result.get("isError"), f"{intruder} reached alice's row with {tool}: {result}"
    assert "not found" in result["content"][0]["text"], result["content"][0]["text"]
    assert "launch code" not in json.dumps(result)
    assert_victim_intact(stack, victim)


def test_intruders_list_nothing_of_the_victim(stack: Stack, victim: Victim) -> None:
    for name in ("bob", "carol"):
        assert stack.ok(api_key(name), "list_todos", project_id=victim.project)["todos"] == []
        found = stack.ok(api_key(name), "search_documents", query="launch code")["results"]
        assert victim.document not in [d["id"] for d in found]


def test_tenant_admin_sees_only_its_own_tenants_audit_log(stack: Stack, victim: Victim) -> None:
    stack.ok(api_key("carol"), "create_todo", title="carol's todo in beta")
    admin = api_key("admin")
    assert stack.ok(admin, "list_audit_events", user_id="apikey:carol")["events"] == []
    alice_events = stack.ok(admin, "list_audit_events", user_id="apikey:alice", tool="create_project")["events"]
    assert victim.project in [e["target_id"] for e in alice_events]  # the admin does see its own tenant
