"""Phase 5: the Envoy CheckResponse — allow with identity headers, or deny exactly as the contract says.

Allow: identity headers overwrite anything of that name (append=false and
OVERWRITE_IF_EXISTS_OR_ADD); the credential headers and any identity header this identity does
not set go in `headers_to_remove`, so neither a token nor a forged x-mcp-* reaches the app.
Deny: HTTP status, JSON body `{"error", "error_description"}`, WWW-Authenticate with
`resource_metadata` (RFC 9728), Retry-After on 503.
"""

from __future__ import annotations

import json
import re

from google.protobuf.wrappers_pb2 import BoolValue
from google.rpc import code_pb2, status_pb2

from authz_service.errors import Denied, InsufficientScope, MissingCredential, ProviderUnavailable
from authz_service.proto import base_pb2, external_auth_pb2, http_status_pb2
from mcp_pa.core.contract import CREDENTIAL_HEADERS, IDENTITY_HEADERS, PRM_MCP_PATH, Identity, scope_for

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_GRPC_CODE = {400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED, 403: code_pb2.PERMISSION_DENIED, 503: code_pb2.UNAVAILABLE}
_UNSAFE_IN_QUOTES = re.compile(r'[^\x20-\x7e]|["\\]')


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


def _quoted(text: str) -> str:
    # RFC 6750 §3: error_description is printable ASCII without '"' or '\'.
    return _UNSAFE_IN_QUOTES.sub("'", text)[:300]


class Responder:
    """Builds denials for one public URL (the resource_metadata it points clients at)."""

    def __init__(self, public_url: str) -> None:
        self.resource_metadata = f"{public_url.rstrip('/')}{PRM_MCP_PATH}"

    def www_authenticate(self, denied: Denied) -> str | None:
        metadata = f'resource_metadata="{self.resource_metadata}"'
        if isinstance(denied, MissingCredential):
            return f"Bearer {metadata}"
        if isinstance(denied, InsufficientScope):
            return f'Bearer error="insufficient_scope", scope="{scope_for(denied.permission)}", {metadata}'
        if denied.http_status in (400, 401):
            return f'Bearer error="{denied.error}", error_description="{_quoted(denied.description)}", {metadata}'
        return None

    def deny(self, denied: Denied) -> external_auth_pb2.CheckResponse:
        body: dict[str, str] = {"error": denied.error or "unauthorized", "error_description": denied.description}
        headers = [_header("content-type", "application/json"), _header("cache-control", "no-store")]
        challenge = self.www_authenticate(denied)
        if challenge:
            headers.append(_header("www-authenticate", challenge))
        if isinstance(denied, ProviderUnavailable):
            headers.append(_header("retry-after", str(denied.retry_after)))
        if isinstance(denied, InsufficientScope):
            body["scope"] = scope_for(denied.permission)
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=_GRPC_CODE.get(denied.http_status, code_pb2.PERMISSION_DENIED), message=denied.error),
            denied_response=external_auth_pb2.DeniedHttpResponse(
                status=http_status_pb2.HttpStatus(code=denied.http_status),
                headers=headers,
                body=json.dumps(body),
            ),
        )
