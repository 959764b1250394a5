"""Phase 5: the Envoy CheckResponse — allow with identity headers, or deny exactly as the contract says.

Allow: identity headers overwrite anything of that name (append=false and
OVERWRITE_IF_EXISTS_OR_ADD); the credential headers and any identity header this identity does
not set go in `headers_to_remove`, so neither a token nor a forged x-mcp-* reaches the app.
Deny: the denial's row of `mcp_pa.core.decisions` rendered: HTTP status, JSON body
`{"error", "error_description"}`, WWW-Authenticate with `resource_metadata` (RFC 9728), Retry-After.
"""

from __future__ import annotations

import json
from typing import cast

from google.protobuf.wrappers_pb2 import BoolValue
from google.rpc import code_pb2, status_pb2

from authz_service.errors import Denied, InsufficientScope, ProviderUnavailable
from authz_service.proto import base_pb2, external_auth_pb2, http_status_pb2
from mcp_pa.core import decisions
from mcp_pa.core.contract import CREDENTIAL_HEADERS, IDENTITY_HEADERS, PRM_MCP_PATH, Identity, scope_for

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value), append=BoolValue(value=False), append_action=_OVERWRITE
    )


def allow(identity: Identity) -> external_auth_pb2.CheckResponse:
    """The OK response for an identity; built once per identity and reused while it is cached."""
    headers = identity.to_headers()
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=external_auth_pb2.OkHttpResponse(
            headers=[_header(k, v) for k, v in headers.items()],
            headers_to_remove=[*CREDENTIAL_HEADERS, *(h for h in IDENTITY_HEADERS if h not in headers)],
        ),
    )


def _grpc_code(decision: decisions.Decision) -> int:
    return int(code_pb2.Code.Value(decision.grpc_code or "PERMISSION_DENIED"))


class Responder:
    """Builds denials for one public URL (the resource_metadata it points clients at)."""

    def __init__(self, public_url: str) -> None:
        self.resource_metadata = f"{public_url.rstrip('/')}{PRM_MCP_PATH}"

    def render(self, denied: Denied) -> decisions.Reply:
        """The denial's row of the decision table, filled in with this denial's details."""
        return decisions.reply(
            denied.decision,
            denied.description,
            resource_metadata=self.resource_metadata,
            scope=scope_for(denied.permission) if isinstance(denied, InsufficientScope) else "",
            retry_after=denied.retry_after if isinstance(denied, ProviderUnavailable) else None,
        )

    def www_authenticate(self, denied: Denied) -> str | None:
        return self.render(denied).headers.get("www-authenticate")

    def deny(self, denied: Denied) -> external_auth_pb2.CheckResponse:
        rendered = self.render(denied)
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=_grpc_code(denied.decision), message=denied.error),
            denied_response=external_auth_pb2.DeniedHttpResponse(
                status=http_status_pb2.HttpStatus(code=cast(http_status_pb2.StatusCode, rendered.status)),
                headers=[_header(k, v) for k, v in rendered.headers.items()],
                body=json.dumps(rendered.body),
            ),
        )
