"""Asking the authz service about one request over gRPC, and reading its answer as Envoy applies it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from authz_service.proto import attribute_context_pb2, base_pb2, external_auth_pb2


@dataclass
class Decision:
    """A CheckResponse read the way Envoy applies it."""

    allowed: bool
    status: int
    headers: dict[str, str]
    removed: list[str]
    body: dict[str, Any] | None
    raw: external_auth_pb2.CheckResponse


def decode(response: external_auth_pb2.CheckResponse) -> Decision:
    if response.HasField("ok_response"):
        ok = response.ok_response
        return Decision(True, 200, {h.header.key: h.header.value for h in ok.headers}, list(ok.headers_to_remove), None, response)
    denied = response.denied_response
    headers = {h.header.key: h.header.value for h in denied.headers}
    return Decision(False, denied.status.code, headers, [], json.loads(denied.body) if denied.body else None, response)


def check_request(headers: dict[str, str] | None = None, header_map: list[tuple[str, str]] | None = None, path: str = "/mcp") -> external_auth_pb2.CheckRequest:
    AC = attribute_context_pb2.AttributeContext
    http = AC.HttpRequest(id="req-1", method="POST", path=path, host="mcp.example.com", scheme="https", headers=headers or {})
    if header_map is not None:
        http.header_map.CopyFrom(base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, value=v) for k, v in header_map]))
    return external_auth_pb2.CheckRequest(attributes=AC(request=AC.Request(http=http)))
