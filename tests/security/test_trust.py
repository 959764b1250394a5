"""Tenancy you can trust (issue 12), through the real stack: Envoy → authz → app, real signed tokens.

Each test names the rule it pins (docs/architecture.md "Tenants and permissions", "Identity
headers", and "every redirect's Location is built from MCP_HTTP_PUBLIC_URL").
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

import pytest

from authz_service.tenancy import personal_tenant
from mcp_pa.core import contract
from tests.security.conftest import Stack, api_key, bearer, mcp_headers, tool_call

HOSTILE_HOST = "evil.example"


def whoami(stack: Stack, credential: dict[str, str]) -> dict[str, Any]:
    return stack.ok(credential, "whoami")


def raw_request(stack: Stack, method: str, path: str, headers: dict[str, str], body: bytes | None = None, https: bool = True) -> tuple[int, dict[str, str]]:
    """One request whose Host header is exactly the one given (http.client would add its own)."""
    if https:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection("localhost", stack.envoy.https_port, context=stack.envoy.tls_context(), timeout=20)
    else:
        conn = http.client.HTTPConnection("localhost", stack.envoy.http_port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


# ---- Google: domain tenancy only when hd equals the email's domain ---------------------------

@pytest.mark.parametrize(
    ("hd", "domain_tenant"),
    [(None, False), ("other.example", False), ("work.example", True)],
    ids=["no-hd", "another-hd", "matching-hd"],
)
def test_rule_google_hd_decides_domain_tenancy_end_to_end(stack: Stack, hd: str | None, domain_tenant: bool) -> None:
    sub = f"e2e-hd-{hd}"
    claims = {"hd": hd} if hd else {}
    me = whoami(stack, bearer(stack.google_token(sub=sub, email="ann@work.example", **claims)))
    assert me["tenant_id"] == ("work_example" if domain_tenant else personal_tenant(f"google:{sub}"))


def test_rule_oidc_issuer_without_domains_gives_a_personal_tenant_end_to_end(stack: Stack) -> None:
    me = whoami(stack, bearer(stack.oidc_token(sub="e2e-corp", email="boss@corp.test", scope="openid")))
    assert me["tenant_id"] == personal_tenant("oidc-corp:e2e-corp")


def test_rule_scopes_only_narrow_end_to_end(stack: Stack) -> None:
    everything = "openid " + " ".join(contract.SCOPES)
    me = whoami(stack, bearer(stack.oidc_token(sub="e2e-asks-all", scope=everything)))
    assert me["permissions"] == ["read", "write"]  # mcp:admin was asked for, never granted
    me = whoami(stack, bearer(stack.oidc_token(sub="e2e-reader", scope="openid mcp:read")))
    assert me["permissions"] == ["read"]  # narrowing to read-only


# ---- identity headers: non-ASCII values percent-encoded by authz, decoded by the app ----------

def test_rule_non_ascii_email_name_and_subject_reach_the_app_intact(stack: Stack) -> None:
    token = stack.oidc_token(sub="jöhn-ü", email="jöhn@bücher.test", name="Jöhn Ünïcode 100%")
    me = whoami(stack, bearer(token))
    assert me["user_id"] == "oidc-corp:jöhn-ü"
    assert me["email"] == "jöhn@bücher.test"
    assert me["name"] == "Jöhn Ünïcode 100%"


def test_rule_control_character_in_a_claim_is_refused_at_authz(stack: Stack) -> None:
    reply = stack.rpc(bearer(stack.oidc_token(sub="e2e-ctl", name="Eve\x07")), tool_call("whoami"))
    assert reply.status == 401
    assert json.loads(reply.body)["error"] == "invalid_token"


# ---- redirects: built from the public URL, never from the client's Host ------------------------

def test_rule_http_to_https_redirect_ignores_a_hostile_host(stack: Stack) -> None:
    status, headers = raw_request(stack, "GET", "/mcp?x=1", {"host": HOSTILE_HOST}, https=False)
    assert status == 301
    assert headers["location"] == f"{stack.envoy.public_url}/mcp?x=1"


def test_rule_trailing_slash_is_served_without_a_redirect_to_the_clients_host(stack: Stack) -> None:
    body = json.dumps(tool_call("whoami")).encode()
    headers = {"host": urllib.parse.urlsplit(stack.envoy.public_url).netloc, **mcp_headers(api_key("alice"))}
    status, answer = raw_request(stack, "POST", "/mcp/", headers, body)
    assert status == 200, (status, answer)
    assert "location" not in answer
    status, answer = raw_request(stack, "POST", "/mcp/", {**headers, "host": HOSTILE_HOST}, body)
    assert HOSTILE_HOST not in answer.get("location", ""), answer
