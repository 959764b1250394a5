"""Envoy's own replies, through the real binary, are the `envoy` rows of the decision table.

One Envoy with nothing behind it (no authz service, no app listening) and small limits can
produce every local reply: each test provokes one row from its own loopback address and checks
the status, the JSON body, Retry-After and the rest of the headers against mcp_pa.core.decisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from mcp_pa.core import contract, decisions
from mcp_pa.core.decisions import Decision
from mcp_pa.up.certs import DevCerts
from mcp_pa.up.envoy_config import RateLimit
from tests.support.stack import Envoy, Reply, assert_security_headers, start_envoy

PER_ADDRESS = 3
MAX_BODY = 1024
API_KEY = {contract.HEADER_API_KEY: "mcp_sk_local_replies_0123456789abcdef"}


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory, dev_certs: DevCerts) -> Iterator[Envoy]:
    # start_envoy's authz and app ports are free ones nobody listens on: both are "down".
    proxy = start_envoy(
        Path(tmp_path_factory.mktemp("envoy")),
        dev_certs,
        per_address_limit=RateLimit(PER_ADDRESS, 300),  # no token comes back while the module runs
        max_request_bytes=MAX_BODY,
    )
    yield proxy
    proxy.stop()


def _authz_unavailable(envoy: Envoy, source: str) -> Reply:
    return envoy.request("POST", contract.MCP_PATH, API_KEY, body=b"{}", source=source)


def _rate_limited(envoy: Envoy, source: str) -> Reply:
    for _ in range(PER_ADDRESS):
        assert envoy.request("GET", contract.HEALTHZ_PATH, source=source).status == 200
    return envoy.request("GET", contract.HEALTHZ_PATH, source=source)


def _body_too_large(envoy: Envoy, source: str) -> Reply:
    return envoy.request("POST", contract.MCP_PATH, API_KEY, body=b"x" * (MAX_BODY + 1), source=source)


def _forbidden_origin(envoy: Envoy, source: str) -> Reply:
    return envoy.request("POST", contract.MCP_PATH, {"origin": "https://evil.example", **API_KEY}, body=b"{}", source=source)


def _not_found(envoy: Envoy, source: str) -> Reply:
    return envoy.request("GET", contract.METRICS_PATH, source=source)


def _malformed_request(envoy: Envoy, source: str) -> Reply:
    return envoy.request("GET", contract.MCP_PATH, {"x_underscore": "1", **API_KEY}, source=source)


def _upstream_unavailable(envoy: Envoy, source: str) -> Reply:
    return envoy.request("GET", contract.PRM_MCP_PATH, source=source)  # public route to the absent app


def _refused(envoy: Envoy, source: str) -> Reply:
    return envoy.request("GET", contract.MCP_PATH, {"x-big": "a" * 40_000}, source=source)  # over max_request_headers_kb: 431


PROVOKE: dict[str, Callable[[Envoy, str], Reply]] = {
    decisions.AUTHZ_UNAVAILABLE.name: _authz_unavailable,
    decisions.RATE_LIMITED_REPLY.name: _rate_limited,
    decisions.BODY_TOO_LARGE.name: _body_too_large,
    decisions.FORBIDDEN_ORIGIN.name: _forbidden_origin,
    decisions.NOT_FOUND.name: _not_found,
    decisions.MALFORMED_REQUEST.name: _malformed_request,
    decisions.UPSTREAM_UNAVAILABLE.name: _upstream_unavailable,
    decisions.REFUSED.name: _refused,
}


def test_every_envoy_row_of_the_table_is_provoked_here() -> None:
    assert set(PROVOKE) == {d.name for d in decisions.ENVOY_REPLIES}


@pytest.mark.parametrize("index", range(len(decisions.ENVOY_REPLIES)), ids=[d.name for d in decisions.ENVOY_REPLIES])
def test_envoy_local_reply_is_its_decision_table_row(envoy: Envoy, index: int) -> None:
    decision: Decision = decisions.ENVOY_REPLIES[index]
    reply = PROVOKE[decision.name](envoy, f"127.0.3.{index + 1}")
    if decision.or_above:
        # A catch-all: Envoy chose the status (503 for the absent app, 431 for huge headers) within its class.
        assert decision.http_status <= reply.status < decision.http_status + 100, reply
    else:
        assert reply.status == decision.http_status, reply
    assert reply.json() == {"error": decision.error, "error_description": decision.description}
    expected = decisions.reply(decision, decision.description or "")
    for name, value in expected.headers.items():
        assert reply.headers.get(name) == value, f"{decision.name}: {name} is {reply.headers.get(name)!r}"
    if decision.retry_after is None:
        assert "retry-after" not in reply.headers, decision.name
    assert "www-authenticate" not in reply.headers, decision.name
    assert_security_headers(reply)
