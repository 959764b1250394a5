"""Property-based fuzzing of the two inputs an attacker controls: the Check request and tool arguments.

Check: random header sets, token shapes and unicode go over real gRPC to the stack's authz
process. Without a valid credential the answer is always a deny with 400 or 401, never an
allow, never a gRPC error. With a valid credential and random other headers, the identity is
always the credential's. Tools: random names and arguments go through Envoy to the app; the
answer is always a JSON-RPC reply over HTTP 200 (a tool error or a protocol error), never a
500 and never the app's "internal error".
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz_service.proto import external_auth_pb2_grpc
from fakes import b64url
from mcp_pa.core import contract
from tests.security.conftest import GOOGLE_CLIENT, GOOGLE_ISSUER, KEYS, OIDC_AUDIENCE, Stack, api_key, mcp_headers, tool_call
from tests.support.authz import Decision, check_request, decode


def fuzz(examples: int) -> settings:
    """Bounded and repeatable: the same examples on every run, no deadline on a busy machine."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

# Protobuf strings must be valid UTF-8: everything but lone surrogates.
UNICODE = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
B64URL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | UNICODE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(UNICODE, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def check_stub(stack: Stack) -> Iterator[external_auth_pb2_grpc.AuthorizationStub]:
    with grpc.insecure_channel(f"127.0.0.1:{stack.authz.port}") as channel:
        yield external_auth_pb2_grpc.AuthorizationStub(channel)


def ask(stub: external_auth_pb2_grpc.AuthorizationStub, headers: dict[str, str] | None = None, **kwargs: Any) -> Decision:
    # A gRPC error here (INTERNAL, UNKNOWN…) raises and fails the property: Envoy would answer 503.
    return decode(stub.Check(check_request(headers, **kwargs), timeout=20))


@st.composite
def jwt_shaped(draw: st.DrawFn) -> str:
    """Three base64url segments whose header and claims look plausible enough to reach verification."""
    now = int(time.time())
    header = draw(
        st.fixed_dictionaries(
            {"alg": st.sampled_from(["RS256", "ES256", "HS256", "none", "PS256", "EdDSA", ""]) | UNICODE},
            optional={"kid": UNICODE, "typ": st.sampled_from(["JWT", "at+jwt"]), "jku": UNICODE, "crit": st.lists(UNICODE, max_size=2)},
        )
    )
    claims = draw(
        st.fixed_dictionaries(
            {"iss": st.sampled_from([GOOGLE_ISSUER, "accounts.google.com", "https://evil.example"]) | UNICODE},
            optional={
                "aud": st.sampled_from([GOOGLE_CLIENT, OIDC_AUDIENCE]) | UNICODE | st.lists(UNICODE, max_size=3),
                "sub": UNICODE | st.integers(),
                "exp": st.integers(now - 10**6, now + 10**6) | UNICODE,
                "email": UNICODE,
                "email_verified": st.booleans() | UNICODE,
                "permissions": st.lists(UNICODE, max_size=3),
            },
        )
    )
    signature = draw(st.text(B64URL_CHARS, max_size=400) | st.binary(max_size=300).map(b64url))
    pieces = [b64url(header), b64url(claims), signature]
    if draw(st.booleans()):
        pieces = draw(st.permutations(pieces))  # shuffled segments
    return ".".join(pieces)


TOKENS = st.one_of(
    UNICODE,
    jwt_shaped(),
    st.text(B64URL_CHARS + ".", max_size=200),
    st.sampled_from([contract.API_KEY_PREFIX, "ya29.", "gho_", "ghp_", "ghu_", "github_pat_"]).flatmap(
        lambda prefix: st.text(B64URL_CHARS, max_size=60).map(lambda rest: prefix + rest)
    ),
    st.sampled_from(list(KEYS.values())).map(lambda k: k[:-1] + "Z"),  # one character off a real key
)
AUTHORIZATION = st.one_of(
    TOKENS.map(lambda t: f"Bearer {t}"),
    st.tuples(st.sampled_from(["bearer", "BEARER", "Basic", "Bearer  ", "Token", ""]), TOKENS).map(" ".join),
    UNICODE,
)
HEADER_NAMES = st.sampled_from(
    [*contract.IDENTITY_HEADERS, contract.HEADER_MCP_METHOD, contract.HEADER_MCP_NAME, "cookie", "x-forwarded-for", "host", "origin"]
) | st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
OTHER_HEADERS = st.dictionaries(
    HEADER_NAMES.filter(lambda n: n not in contract.CREDENTIAL_HEADERS), UNICODE, max_size=6
)


@st.composite
def credential_headers(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers[contract.HEADER_AUTHORIZATION] = draw(AUTHORIZATION)
    if draw(st.booleans()):
        headers[contract.HEADER_API_KEY] = draw(TOKENS)
    return headers


def assert_refused(decision: Decision) -> None:
    assert not decision.allowed, f"allowed without a valid credential: {decision.headers}"
    assert decision.status in (400, 401), (decision.status, decision.body)
    assert decision.body and decision.body.get("error") in ("invalid_request", "invalid_token", "unauthorized"), decision.body


@fuzz(250)
@given(credentials=credential_headers(), others=OTHER_HEADERS)
def test_check_without_a_valid_credential_is_never_allowed(check_stub: Any, credentials: dict[str, str], others: dict[str, str]) -> None:
    assert_refused(ask(check_stub, {**others, **credentials}))


@fuzz(60)
@given(entries=st.lists(st.tuples(st.sampled_from([*contract.CREDENTIAL_HEADERS, "x-mcp-user-id", "mcp-method"]), TOKENS), max_size=5))
def test_check_with_a_raw_header_map_is_never_allowed_without_a_credential(check_stub: Any, entries: list[tuple[str, str]]) -> None:
    assert_refused(ask(check_stub, header_map=entries))


@fuzz(100)
@given(
    others=OTHER_HEADERS,
    method=st.sampled_from([None, "tools/call", "resources/read", "initialize"]) | UNICODE,
    name=st.sampled_from(list(contract.TOOL_PERMISSIONS)) | UNICODE,
)
def test_check_with_a_valid_key_asserts_only_that_keys_identity(check_stub: Any, others: dict[str, str], method: str | None, name: str) -> None:
    headers = {**others, **api_key("reader")}
    headers.pop(contract.HEADER_MCP_METHOD, None)
    headers.pop(contract.HEADER_MCP_NAME, None)
    if method is not None:
        headers.update({contract.HEADER_MCP_METHOD: method, contract.HEADER_MCP_NAME: name})
    decision = ask(check_stub, headers)
    needed = contract.required_permission(method, name)
    if needed in (contract.PERMISSION_WRITE, contract.PERMISSION_ADMIN):
        assert (decision.allowed, decision.status) == (False, 403), decision
        return
    assert decision.allowed, decision
    assert decision.headers[contract.HEADER_USER_ID] == "apikey:reader"
    assert decision.headers[contract.HEADER_TENANT_ID] == "alpha"
    assert decision.headers[contract.HEADER_PERMISSIONS] == "read"
    assert set(contract.CREDENTIAL_HEADERS) <= set(decision.removed)


# ---- tool inputs through Envoy -----------------------------------------------------------
PARAMETER_NAMES = st.sampled_from(
    ["title", "name", "content", "project_id", "todo_id", "event_id", "document_id", "starts_at", "ends_at", "due_date",
     "priority", "status", "limit", "query", "tags", "kind", "data_base64", "content_type", "url", "days", "include_data"]
) | UNICODE
TOOL_NAMES = st.sampled_from(list(contract.TOOL_PERMISSIONS)) | UNICODE
ARGUMENTS = st.dictionaries(PARAMETER_NAMES, JSON_VALUES, max_size=5) | JSON_VALUES


@fuzz(120)
@given(tool=TOOL_NAMES, arguments=ARGUMENTS)
def test_random_tool_input_gets_a_clear_error_never_a_500(stack: Stack, tool: str, arguments: Any) -> None:
    message = {**tool_call(tool), "params": {"name": tool, "arguments": arguments}}
    reply = stack.request("POST", contract.MCP_PATH, mcp_headers(api_key("fuzzer")), json.dumps(message).encode())
    if contract.TOOL_PERMISSIONS.get(tool) == contract.PERMISSION_ADMIN:
        # The fuzzer's key has read,write: the edge reads the tool from the body and refuses it.
        assert (reply.status, reply.json()["error"]) == (403, "insufficient_scope"), (reply.status, reply.body[:300])
        return
    assert reply.status in (200, 400), (reply.status, reply.body[:300])
    answer = reply.json()
    if "error" in answer:
        assert answer["error"]["code"] in (-32600, -32601, -32602), answer  # a protocol-level refusal
        assert answer["error"]["message"]
        return
    assert reply.status == 200
    result = answer["result"]
    if result.get("isError"):
        text = result["content"][0]["text"]
        assert text and "internal error" not in text and "Traceback" not in text, text


@fuzz(40)
@given(body=st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_random_request_body_gets_a_client_error_never_a_500(stack: Stack, body: bytes) -> None:
    reply = stack.request("POST", contract.MCP_PATH, mcp_headers(api_key("fuzzer")), body)
    assert reply.status in (200, 202, 400), (reply.status, reply.body[:300])
