"""The decision table: every way the front door refuses a request, defined once.

Each row names who answers (the authz service, Envoy itself or the app), the HTTP status, the
OAuth/JSON `error` code, the WWW-Authenticate challenge kind, Retry-After, whether the identity
cache may remember it, and the JSON-RPC error `mcp-pa connect` turns it into.
`authz_service.errors`, `authz_service.response`, the app's 401, the bridge and the tests derive
from these rows; tests pin `envoy/envoy.yaml`'s local replies and docs/architecture.md to them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mcp_pa.core import contract

# What the 401 challenge asks clients to request: the default permissions of a signed-in user.
SIGN_IN_SCOPE = " ".join(contract.scope_for(p) for p in contract.DEFAULT_USER_PERMISSIONS)

# JSON-RPC codes the bridge answers for front-door statuses. They sit in the implementation-
# defined server range (-32000..-32099) away from the codes the MCP SDK gives a meaning to
# (-32000 closed, -32001 timeout, -32020..-32022 version negotiation), so a client's
# era-negotiation logic treats them as ordinary failures.
UNAUTHORIZED = -32010
FORBIDDEN = -32011
RATE_LIMITED = -32012
UNAVAILABLE = -32013
INTERNAL_ERROR = -32603  # JSON-RPC 2.0's own code: any other status
# What the bridge says for a status no row names (and for rows without advice of their own).
GENERIC_BRIDGE_MESSAGE = "The server answered HTTP {status}{said}."


class Answerer(enum.StrEnum):
    """Who writes the reply: the authz service's denial, Envoy's local reply, or the app itself."""

    AUTHZ = "authz"
    ENVOY = "envoy"
    APP = "app"


class Challenge(enum.StrEnum):
    """What the WWW-Authenticate header carries (RFC 6750 §3, RFC 9728 resource_metadata)."""

    NONE = "none"  # no WWW-Authenticate
    METADATA = "resource_metadata"  # `Bearer resource_metadata="…", scope="mcp:read mcp:write"`: no credential was sent
    ERROR = "error"  # `Bearer error="…", error_description="…", resource_metadata="…"`
    SCOPE = "insufficient_scope"  # `Bearer error="insufficient_scope", scope="…", resource_metadata="…"`


@dataclass(frozen=True, slots=True)
class Decision:
    """One row of the table. `description` is the fixed error_description where the text is fixed."""

    name: str
    answered_by: Answerer
    situation: str
    http_status: int
    error: str
    challenge: Challenge = Challenge.NONE
    retry_after: int | None = None  # seconds; the default when the answerer may pass its own
    cacheable: bool = False
    jsonrpc_code: int = INTERNAL_ERROR
    # Placeholders: {status}, {said} (": <error_description>" or ""), {wait}, {scope}, {hint}
    # (the bridge's advice for the credential in use).
    bridge_message: str = GENERIC_BRIDGE_MESSAGE
    description: str | None = None
    # Envoy's catch-all mappers match this status or any above it (first matching mapper wins).
    or_above: bool = False
    grpc_code: str | None = None  # google.rpc.Code name of the Check status (authz rows)


_NOT_AUTHENTICATED = "Not authenticated (HTTP {status}{said}). {hint}"
_UNAVAILABLE_MESSAGE = (
    "Server unavailable (HTTP {status}{said}): the server, its authorization service or an identity provider "
    "is not reachable right now. Try again in {wait}."
)

MISSING_CREDENTIAL = Decision(
    "missing_credential",
    Answerer.AUTHZ,
    "no credential",
    401,
    "unauthorized",
    Challenge.METADATA,
    cacheable=True,
    jsonrpc_code=UNAUTHORIZED,
    bridge_message=_NOT_AUTHENTICATED,
    grpc_code="UNAUTHENTICATED",
)
INVALID_TOKEN = Decision(
    "invalid_token",
    Answerer.AUTHZ,
    "malformed, bad signature, expired, wrong issuer/audience/type, revoked, unknown API key",
    401,
    "invalid_token",
    Challenge.ERROR,
    cacheable=True,
    jsonrpc_code=UNAUTHORIZED,
    bridge_message=_NOT_AUTHENTICATED,
    grpc_code="UNAUTHENTICATED",
)
INVALID_REQUEST = Decision(
    "invalid_request",
    Answerer.AUTHZ,
    "two different credentials, duplicate Authorization, `Mcp-Method`/`Mcp-Name` that disagree with the JSON-RPC body",
    400,
    "invalid_request",
    Challenge.ERROR,
    cacheable=True,
    grpc_code="INVALID_ARGUMENT",
)
ACCESS_DENIED = Decision(
    "access_denied",
    Answerer.AUTHZ,
    "valid identity that policy refuses (suspended tenant, disallowed GitHub org, denied domain)",
    403,
    "access_denied",
    cacheable=True,
    jsonrpc_code=FORBIDDEN,
    bridge_message=(
        "Access denied (HTTP {status}{said}). Your credential is valid but the server's policy refuses it; "
        "contact the server's administrator."
    ),
    grpc_code="PERMISSION_DENIED",
)
INSUFFICIENT_SCOPE = Decision(
    "insufficient_scope",
    Answerer.AUTHZ,
    "valid identity lacking the permission for the MCP method/tool it calls (named in `Mcp-Method`/`Mcp-Name` or in the JSON-RPC body)",
    403,
    "insufficient_scope",
    Challenge.SCOPE,
    cacheable=True,
    jsonrpc_code=FORBIDDEN,
    bridge_message=(
        "Permission denied (HTTP {status}): this needs {scope}, which your credential does not grant. "
        "Ask the tenant's admin for the permission, or use a credential that has it."
    ),
    grpc_code="PERMISSION_DENIED",
)
PROVIDER_UNAVAILABLE = Decision(
    "provider_unavailable",
    Answerer.AUTHZ,
    "provider unreachable / timeout / 5xx / rate-limited, no cached decision",
    503,
    "temporarily_unavailable",
    retry_after=5,
    cacheable=False,  # never remembered: the next check asks the provider again
    jsonrpc_code=UNAVAILABLE,
    bridge_message=_UNAVAILABLE_MESSAGE,
    grpc_code="UNAVAILABLE",
)

# Envoy's own replies, in the order of envoy.yaml's local_reply_config mappers.
AUTHZ_UNAVAILABLE = Decision(
    "authz_unavailable",
    Answerer.ENVOY,
    "the authz service did not answer in time or is down (ext_authz fails closed)",
    503,
    "temporarily_unavailable",
    retry_after=5,
    jsonrpc_code=UNAVAILABLE,
    bridge_message=_UNAVAILABLE_MESSAGE,
    description="the authorization service is unavailable; retry later",
)
RATE_LIMITED_REPLY = Decision(
    "rate_limited",
    Answerer.ENVOY,
    "over the rate limit per client address (before authz) or per tenant (after)",
    429,
    "rate_limited",
    retry_after=1,
    jsonrpc_code=RATE_LIMITED,
    bridge_message="Rate limited (HTTP {status}{said}). Wait {wait} and try again.",
    description="too many requests; slow down and retry later",
)
BODY_TOO_LARGE = Decision(
    "body_too_large",
    Answerer.ENVOY,
    "request body over the limit (8 MiB)",
    413,
    "request_too_large",
    bridge_message="The request is too large for this server (HTTP {status}{said}); send less at once.",
    description="the request body is larger than this server accepts",
)
FORBIDDEN_ORIGIN = Decision(
    "forbidden_origin",
    Answerer.ENVOY,
    "a browser Origin that is not allowed (before authz)",
    403,
    "forbidden_origin",
    jsonrpc_code=FORBIDDEN,
    bridge_message="Refused (HTTP {status}{said}).",
    description="requests from this Origin are not allowed; add it to MCP_HTTP_ALLOWED_ORIGINS",
)
NOT_FOUND = Decision(
    "not_found",
    Answerer.ENVOY,
    "a path Envoy hides (`/metrics`)",
    404,
    "not_found",
    description="no such path on this server",
)
MALFORMED_REQUEST = Decision(
    "malformed_request",
    Answerer.ENVOY,
    "a request Envoy cannot accept (for example a header name with an underscore)",
    400,
    "invalid_request",
    description="malformed request (for example a header name with an underscore)",
)
UPSTREAM_UNAVAILABLE = Decision(
    "upstream_unavailable",
    Answerer.ENVOY,
    "the app is unreachable or failed (any 5xx Envoy answers itself)",
    500,
    "temporarily_unavailable",
    jsonrpc_code=UNAVAILABLE,
    bridge_message=_UNAVAILABLE_MESSAGE,
    description="the service is unavailable; retry later",
    or_above=True,
)
REFUSED = Decision(
    "refused",
    Answerer.ENVOY,
    "any other 4xx Envoy answers itself (for example headers too large)",
    400,
    "invalid_request",
    description="the request was refused",
    or_above=True,
)

MISSING_IDENTITY = Decision(
    "missing_identity",
    Answerer.APP,
    "a request that reached the app without valid identity headers (not through the front door)",
    401,
    "unauthorized",
    jsonrpc_code=UNAUTHORIZED,
    bridge_message=_NOT_AUTHENTICATED,
    description="{reason}; this app is reached only through the mcp-pa front door",
)

DECISIONS: tuple[Decision, ...] = (
    MISSING_CREDENTIAL,
    INVALID_TOKEN,
    INVALID_REQUEST,
    ACCESS_DENIED,
    INSUFFICIENT_SCOPE,
    PROVIDER_UNAVAILABLE,
    AUTHZ_UNAVAILABLE,
    RATE_LIMITED_REPLY,
    BODY_TOO_LARGE,
    FORBIDDEN_ORIGIN,
    NOT_FOUND,
    MALFORMED_REQUEST,
    UPSTREAM_UNAVAILABLE,
    REFUSED,
    MISSING_IDENTITY,
)
ENVOY_REPLIES = tuple(d for d in DECISIONS if d.answered_by is Answerer.ENVOY)


def by_name(name: str) -> Decision:
    """The row called `name`; raises KeyError for a name the table does not have."""
    for decision in DECISIONS:
        if decision.name == name:
            return decision
    raise KeyError(f"no decision named {name!r}")


def for_reply(status: int, error: str | None) -> Decision | None:
    """The row a reply came from, as a client sees it: status and body `error`, else status alone."""
    exact = [d for d in DECISIONS if d.http_status == status and not d.or_above]
    for decision in exact:
        if decision.error == error:
            return decision
    if exact:
        return exact[0]
    for decision in DECISIONS:
        if decision.or_above and status >= decision.http_status and decision.error == error:
            return decision
    return None


def _quoted(text: str) -> str:
    # RFC 6750 §3: a quoted auth-param is printable ASCII without '"' or '\'.
    return "".join("'" if c in '"\\' or not " " <= c <= "~" else c for c in text)[:300]


@dataclass(frozen=True, slots=True)
class Reply:
    """A denial as it goes on the wire: status, headers and the JSON body."""

    status: int
    headers: dict[str, str]
    body: dict[str, str]


def reply(
    decision: Decision,
    description: str,
    *,
    resource_metadata: str = "",
    scope: str = "",
    retry_after: int | None = None,
) -> Reply:
    """Render a row: JSON body `{"error", "error_description"}` (+ scope), WWW-Authenticate, Retry-After."""
    body = {"error": decision.error, "error_description": description}
    headers = {"content-type": "application/json"}
    if decision.answered_by is Answerer.AUTHZ:
        headers["cache-control"] = "no-store"  # a denial depends on the credential: never reused
    metadata = f'resource_metadata="{resource_metadata}"'
    if decision.challenge is Challenge.METADATA:
        # The scope a client should ask for first (MCP's scope selection): read and write, not
        # admin, which only an administrator's role assignment grants.
        headers["www-authenticate"] = f'Bearer {metadata}, scope="{SIGN_IN_SCOPE}"'
    elif decision.challenge is Challenge.ERROR:
        headers["www-authenticate"] = f'Bearer error="{decision.error}", error_description="{_quoted(description)}", {metadata}'
    elif decision.challenge is Challenge.SCOPE:
        headers["www-authenticate"] = f'Bearer error="{decision.error}", scope="{scope}", {metadata}'
        body["scope"] = scope
    wait = retry_after if retry_after is not None else decision.retry_after
    if wait is not None:
        headers["retry-after"] = str(wait)
    return Reply(decision.http_status, headers, body)
