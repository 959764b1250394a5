"""The front door end to end: real Envoy, real authz service (API keys), echo upstream as the app."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from mcp_pa.core import contract
from mcp_pa.up.certs import DevCerts
from tests.envoy.conftest import TEST_ID_HEADER, EchoUpstream, new_test_id
from tests.support.processes import free_port
from tests.support.stack import Authz, Envoy, Reply, assert_security_headers, start_authz, start_envoy

API_KEY = "mcp_sk_front_door_test_key_0123456789abcdef"
EXTRA_ORIGIN = "https://inspector.example:6274"
BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def https_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def authz(tmp_path_factory: pytest.TempPathFactory, https_port: int) -> Iterator[Authz]:
    service = start_authz(
        tmp_path_factory.mktemp("authz"), free_port(), f"https://localhost:{https_port}", {"MCP_HTTP_API_KEY": API_KEY}
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def envoy(
    tmp_path_factory: pytest.TempPathFactory, dev_certs: DevCerts, https_port: int, authz: Authz, echo_upstream: EchoUpstream
) -> Iterator[Envoy]:
    proxy = start_envoy(
        tmp_path_factory.mktemp("envoy"),
        dev_certs,
        https_port=https_port,
        authz_port=authz.port,
        app_port=echo_upstream.port,
        allowed_origins=(EXTRA_ORIGIN,),
        max_request_bytes=BODY_LIMIT,
    )
    yield proxy
    proxy.stop()


def _send(envoy: Envoy, path: str, credential: bool = True, method: str = "GET", **headers: str) -> tuple[Reply, str]:
    test_id = new_test_id()
    sent = {TEST_ID_HEADER: test_id, **{k.replace("__", "-"): v for k, v in headers.items()}}
    if credential:
        sent["x-api-key"] = API_KEY
    return envoy.request(method, path, sent), test_id


# --- TLS and plain http ---------------------------------------------------------------------


@pytest.mark.parametrize("alpn", ["h2", "http/1.1"])
def test_tls_handshake_offers_h2_and_http11_at_tls12_or_newer(envoy: Envoy, alpn: str) -> None:
    context = envoy.tls_context()
    context.set_alpn_protocols([alpn])
    with socket.create_connection(("127.0.0.1", envoy.https_port), timeout=10) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == alpn
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_below_1_2_is_refused(envoy: Envoy) -> None:
    context = envoy.tls_context()
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", envoy.https_port), timeout=10) as raw, pytest.raises(ssl.SSLError) as refused:
        context.wrap_socket(raw, server_hostname="localhost")
    # The refusal must come from the server's alert, not from a client unable to offer TLS 1.1.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value).upper()


def test_http2_request_is_served_with_security_headers(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    test_id = new_test_id()
    with httpx.Client(http2=True, verify=envoy.tls_context()) as client:
        response = client.get(f"{envoy.public_url}/mcp", headers={TEST_ID_HEADER: test_id, "x-api-key": API_KEY})
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    assert_security_headers(Reply(response.status_code, dict(response.headers), response.content))
    assert len(echo_upstream.seen(test_id)) == 1


def test_plain_http_redirects_to_https_with_301(envoy: Envoy) -> None:
    reply = envoy.request("GET", "/mcp?x=1", https=False)
    assert reply.status == 301
    assert reply.headers["location"] == f"https://localhost:{envoy.https_port}/mcp?x=1"
    assert_security_headers(reply)


@pytest.mark.parametrize("https", [True, False])
def test_healthz_is_answered_by_envoy_without_credential(envoy: Envoy, echo_upstream: EchoUpstream, https: bool) -> None:
    test_id = new_test_id()
    reply = envoy.request("GET", "/healthz", {TEST_ID_HEADER: test_id}, https=https)
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}
    assert_security_headers(reply)
    assert echo_upstream.seen(test_id) == []


# --- authentication -------------------------------------------------------------------------


def test_valid_api_key_reaches_the_app_as_the_default_tenant(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    reply, test_id = _send(envoy, "/mcp", method="POST")
    assert reply.status == 200
    assert_security_headers(reply)
    (seen,) = echo_upstream.seen(test_id)
    assert seen["headers"][contract.HEADER_TENANT_ID] == "default"
    assert seen["headers"][contract.HEADER_USER_ID] == "apikey:default"
    assert seen["headers"][contract.HEADER_REQUEST_ID]


def test_client_request_id_is_replaced_by_envoys_own(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    reply, test_id = _send(envoy, "/mcp", method="POST", **{contract.HEADER_REQUEST_ID: "client-chosen"})
    assert reply.status == 200
    (seen,) = echo_upstream.seen(test_id)
    assert seen["headers"][contract.HEADER_REQUEST_ID] not in ("", "client-chosen")
    assert reply.headers[contract.HEADER_REQUEST_ID] == seen["headers"][contract.HEADER_REQUEST_ID]


def test_missing_credential_is_rejected_with_401_and_resource_metadata(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    reply, test_id = _send(envoy, "/mcp", credential=False, method="POST")
    assert reply.status == 401
    challenge = reply.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{envoy.public_url}{contract.PRM_MCP_PATH}"' in challenge
    assert_security_headers(reply)
    assert echo_upstream.seen(test_id) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer mcp_sk_this_key_does_not_exist_0123456789"},
        {"x-api-key": "mcp_sk_this_key_does_not_exist_0123456789"},
        {"authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln"},
    ],
    ids=["unknown-bearer-key", "unknown-x-api-key", "garbage-jwt"],
)
def test_bad_token_is_rejected_with_401(envoy: Envoy, echo_upstream: EchoUpstream, headers: dict[str, str]) -> None:
    test_id = new_test_id()
    reply = envoy.request("POST", "/mcp", {TEST_ID_HEADER: test_id, **headers})
    assert reply.status == 401
    assert 'error="invalid_token"' in reply.headers["www-authenticate"]
    assert reply.json()["error"] == "invalid_token"
    assert_security_headers(reply)
    assert echo_upstream.seen(test_id) == []


@pytest.mark.parametrize("path", [contract.PRM_PATH, contract.PRM_MCP_PATH])
def test_protected_resource_metadata_answers_without_credential(envoy: Envoy, echo_upstream: EchoUpstream, path: str) -> None:
    reply, test_id = _send(envoy, path, credential=False)
    assert reply.status == 200
    assert_security_headers(reply)
    (seen,) = echo_upstream.seen(test_id)
    assert seen["path"] == path


@pytest.mark.parametrize("credential", [True, False])
def test_app_metrics_are_not_reachable_from_outside(envoy: Envoy, echo_upstream: EchoUpstream, credential: bool) -> None:
    for path in ("/metrics", "/metrics/", "//metrics", "/metrics?x=1"):
        reply, test_id = _send(envoy, path, credential=credential)
        assert reply.status == 404, path
        assert reply.json()["error"] == "not_found"
        assert_security_headers(reply)
        assert echo_upstream.seen(test_id) == []


# --- header hygiene -------------------------------------------------------------------------

FORGED_IDENTITY = {
    contract.HEADER_TENANT_ID: "victim",
    contract.HEADER_USER_ID: "google:someone-else",
    contract.HEADER_PERMISSIONS: "admin,read,write",
    contract.HEADER_EMAIL: "ceo@example.com",
    "X-MCP-Provider": "google",
    "x-mcp-anything-else": "1",
}


def test_client_identity_headers_never_reach_the_app_on_authenticated_routes(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    test_id = new_test_id()
    reply = envoy.request("POST", "/mcp", {TEST_ID_HEADER: test_id, "x-api-key": API_KEY, **FORGED_IDENTITY})
    assert reply.status == 200
    (seen,) = echo_upstream.seen(test_id)
    received = seen["headers"]
    assert received[contract.HEADER_TENANT_ID] == "default"
    assert received[contract.HEADER_USER_ID] == "apikey:default"
    assert received[contract.HEADER_PROVIDER] == "apikey"
    assert contract.HEADER_EMAIL not in received
    assert "x-mcp-anything-else" not in received


@pytest.mark.parametrize("path", [contract.PRM_PATH, contract.PRM_MCP_PATH])
def test_client_identity_headers_never_reach_the_app_on_public_routes(envoy: Envoy, echo_upstream: EchoUpstream, path: str) -> None:
    test_id = new_test_id()
    reply = envoy.request("GET", path, {TEST_ID_HEADER: test_id, **FORGED_IDENTITY})
    assert reply.status == 200
    (seen,) = echo_upstream.seen(test_id)
    assert not [h for h in seen["headers"] if h.startswith(contract.IDENTITY_HEADER_PREFIX)]


@pytest.mark.parametrize(
    "headers",
    [{"x-api-key": API_KEY}, {"authorization": f"Bearer {API_KEY}"}],
    ids=["x-api-key", "bearer"],
)
@pytest.mark.parametrize("path", ["/mcp", contract.PRM_MCP_PATH])
def test_credentials_never_reach_the_app(envoy: Envoy, echo_upstream: EchoUpstream, headers: dict[str, str], path: str) -> None:
    test_id = new_test_id()
    reply = envoy.request("POST", path, {TEST_ID_HEADER: test_id, **headers})
    assert reply.status == 200
    (seen,) = echo_upstream.seen(test_id)
    assert contract.HEADER_AUTHORIZATION not in seen["headers"]
    assert contract.HEADER_API_KEY not in seen["headers"]


def test_app_server_banner_is_removed(envoy: Envoy) -> None:
    reply, _ = _send(envoy, "/mcp")
    assert reply.status == 200
    assert "server" not in reply.headers
    assert "x-envoy-upstream-service-time" not in reply.headers


def test_header_with_underscore_is_rejected_with_400(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    reply, test_id = _send(envoy, "/mcp", x_mcp_tenant_id="victim")
    assert reply.status == 400
    assert reply.json()["error"] == "invalid_request"
    assert_security_headers(reply)
    assert echo_upstream.seen(test_id) == []


def test_header_with_underscore_over_http2_never_reaches_the_app(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    test_id = new_test_id()
    with httpx.Client(http2=True, verify=envoy.tls_context()) as client:
        try:
            response = client.get(
                f"{envoy.public_url}/mcp", headers={TEST_ID_HEADER: test_id, "x-api-key": API_KEY, "x_mcp_tenant_id": "victim"}
            )
        except httpx.RemoteProtocolError:
            pass  # HTTP/2: Envoy resets the stream instead of answering 400
        else:
            assert response.status_code == 400
    assert echo_upstream.seen(test_id) == []


# --- origin ---------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "https://localhost:1", "http://localhost"])
def test_foreign_origin_is_refused_with_403(envoy: Envoy, echo_upstream: EchoUpstream, origin: str) -> None:
    reply, test_id = _send(envoy, "/mcp", method="POST", origin=origin)
    assert reply.status == 403
    assert reply.json()["error"] == "forbidden_origin"
    assert_security_headers(reply)
    assert echo_upstream.seen(test_id) == []


def test_foreign_origin_is_refused_before_authentication(envoy: Envoy) -> None:
    reply, _ = _send(envoy, "/mcp", credential=False, method="POST", origin="https://evil.example")
    assert reply.status == 403


@pytest.mark.parametrize("origin", ["public", EXTRA_ORIGIN, "HTTPS://INSPECTOR.EXAMPLE:6274", None])
def test_allowed_origin_or_none_is_served(envoy: Envoy, echo_upstream: EchoUpstream, origin: str | None) -> None:
    headers = {} if origin is None else {"origin": envoy.public_url if origin == "public" else origin}
    reply, test_id = _send(envoy, "/mcp", method="POST", **headers)
    assert reply.status == 200
    assert len(echo_upstream.seen(test_id)) == 1


def test_protected_resource_metadata_is_served_to_any_origin(envoy: Envoy) -> None:
    reply, _ = _send(envoy, contract.PRM_MCP_PATH, credential=False, origin="https://some-browser-client.example")
    assert reply.status == 200


# --- paths and bodies -----------------------------------------------------------------------

MCP_PATH_VARIANTS = [
    "//mcp", "///mcp", "/%6Dcp", "/%6dcp", "/./mcp", "/x/../mcp", "/%2e%2e/mcp", "/%2Fmcp", "/%2fmcp", "/%2e/mcp", "/mcp/",
    "/.well-known/oauth-protected-resource/../../mcp",
]


@pytest.mark.parametrize("path", MCP_PATH_VARIANTS)
def test_mcp_path_variants_still_need_a_credential(envoy: Envoy, echo_upstream: EchoUpstream, path: str) -> None:
    reply, test_id = _send(envoy, path, credential=False, method="POST")
    assert reply.status == 401, path
    assert echo_upstream.seen(test_id) == []


@pytest.mark.parametrize("path", MCP_PATH_VARIANTS)
def test_mcp_path_variants_reach_the_app_normalised(envoy: Envoy, echo_upstream: EchoUpstream, path: str) -> None:
    reply, test_id = _send(envoy, path, method="POST")
    assert reply.status == 200, path
    (seen,) = echo_upstream.seen(test_id)
    assert seen["path"] in ("/mcp", "/mcp/")


def test_body_over_the_limit_is_rejected_with_413(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    test_id = new_test_id()
    reply = envoy.request("POST", "/mcp", {TEST_ID_HEADER: test_id, "x-api-key": API_KEY}, body=b"x" * (BODY_LIMIT + 1))
    assert reply.status == 413
    assert reply.json()["error"] == "request_too_large"
    assert_security_headers(reply)
    assert echo_upstream.seen(test_id) == []


def test_chunked_body_over_the_limit_is_rejected_with_413(envoy: Envoy) -> None:
    conn = http.client.HTTPSConnection("localhost", envoy.https_port, context=envoy.tls_context(), timeout=20)
    try:
        # No content-length: the limit counts streamed bytes. The body is left unfinished so the
        # 413 is read before the client would send more (no race with Envoy closing the socket).
        conn.putrequest("POST", "/mcp")
        conn.putheader("x-api-key", API_KEY)
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        chunk = b"x" * (BODY_LIMIT + 1)
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"] == "request_too_large"
    finally:
        conn.close()


def test_body_at_the_limit_is_served(envoy: Envoy, echo_upstream: EchoUpstream) -> None:
    test_id = new_test_id()
    reply = envoy.request("POST", "/mcp", {TEST_ID_HEADER: test_id, "x-api-key": API_KEY}, body=b"x" * BODY_LIMIT)
    assert reply.status == 200
    (seen,) = echo_upstream.seen(test_id)
    assert seen["body_length"] == BODY_LIMIT


# --- access log -----------------------------------------------------------------------------


def test_access_log_names_tenant_and_never_a_credential(envoy: Envoy) -> None:
    reply, _ = _send(envoy, "/mcp?token=should-not-be-logged", method="POST")
    assert reply.status == 200
    request_id = reply.headers[contract.HEADER_REQUEST_ID]
    deadline = time.monotonic() + 20  # Envoy flushes its stdout access log about once a second
    entry = None
    while entry is None and time.monotonic() < deadline:
        entry = next((e for e in envoy.access_log() if e.get("request_id") == request_id), None)
        time.sleep(0.2)
    assert entry is not None, "request not in the access log"
    assert entry["tenant_id"] == "default"
    assert entry["user_id"] == "apikey:default"
    assert entry["path"] == "/mcp"
    assert entry["status"] == 200
    log_text = Path(envoy.log_path).read_text()
    assert API_KEY not in log_text
    assert "should-not-be-logged" not in log_text
