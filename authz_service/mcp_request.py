"""What an MCP request calls: the JSON-RPC method and tool name/uri, from its routing headers or its body.

Envoy sends the first `BODY_BYTES` of each request body (`with_request_body` in envoy/envoy.yaml,
partial allowed), so the permission check works for every protocol version: 2026-era clients name
the method in `Mcp-Method`/`Mcp-Name`, 2025-era clients only in the body. When a client sent the
headers and a body, the two must agree (else 400), or the edge would judge one call and the app
run another. A body cut at `BODY_BYTES` is read as far as it goes: `method` and `params.name`
come first in every client we know; when they do not appear in the prefix the request goes on and
the app's own permission gate decides (a tool error instead of a 403, never an allow).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from authz_service.errors import InvalidRequest
from mcp_pa.core.contract import HEADER_MCP_METHOD, HEADER_MCP_NAME

# Bytes of body Envoy sends to the authz service (envoy.yaml's with_request_body.max_request_bytes;
# tests pin the two together).
BODY_BYTES = 16384
# Envoy's metadata header on every Check with a body: "true" when the body was cut at BODY_BYTES.
PARTIAL_BODY_HEADER = "x-envoy-auth-partial-body"
# The body parameter Mcp-Name carries, per method (the MCP SDK's NAME_BEARING_METHODS).
NAME_PARAMS: Mapping[str, str] = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

# The MCP SDK's sentinel for a header value that is not plain printable ASCII.
_B64_SENTINEL = re.compile(r"=\?base64\?(?P<payload>[A-Za-z0-9+/]*={0,2})\?=")
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class McpCall:
    """The method a request calls and the name (tool, prompt) or uri (resource) it names, if any."""

    method: str
    name: str | None = None


def decode_header_value(value: str) -> str | None:
    """The header's text, undoing the SDK's `=?base64?…?=` wrapping; None for a corrupt wrapping."""
    match = _B64_SENTINEL.fullmatch(value)
    if match is None:
        return value
    payload = match.group("payload")
    try:
        decoded = base64.b64decode(payload, validate=True)
        if base64.b64encode(decoded).decode("ascii") != payload:
            return None
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _call_of(message: Any) -> McpCall | None:
    if not isinstance(message, dict):
        return None  # a batch or a scalar: the app refuses it, nothing to check here
    method = message.get("method")
    if not isinstance(method, str):
        return None  # a response or a malformed message: the app answers it
    params = message.get("params")
    key = NAME_PARAMS.get(method)
    name = params.get(key) if key and isinstance(params, dict) else None
    return McpCall(method, name if isinstance(name, str) else None)


def _members(text: str, start: int, wanted: Mapping[str, bool]) -> tuple[dict[str, Any], int | None]:
    """The wanted members of the JSON object at `start`, and where it ends (None: the text ends first).

    `wanted` maps a key to whether its value is an object to read the same way (params) rather than
    a value to decode. Values of other keys are skipped by the C decoder, so a cut body costs one
    pass over its prefix. A later duplicate key overrides, as in json.loads.
    """
    found: dict[str, Any] = {}
    pos = _space_end(text, start)
    if text[pos : pos + 1] != "{":
        return found, None
    pos += 1
    try:
        while True:
            pos = _space_end(text, pos)
            if text[pos : pos + 1] == "}":
                return found, pos + 1
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _space_end(text, pos)
            if text[pos : pos + 1] != ":":
                return found, None
            pos = _space_end(text, pos + 1)
            if wanted.get(key) is True:
                found[key], end = _members(text, pos, {"name": False, "uri": False})
                if end is None:
                    return found, None
                pos = end
            else:
                value, pos = _DECODER.raw_decode(text, pos)  # the cut usually lands here, inside arguments
                if key in wanted:
                    found[key] = value
            pos = _space_end(text, pos)
            if text[pos : pos + 1] == ",":
                pos += 1
            elif text[pos : pos + 1] != "}":
                return found, None
    except ValueError:
        return found, None  # the prefix ends (or is not JSON) here: keep what was read


def _space_end(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def from_body(body: bytes, partial: bool) -> McpCall | None:
    """The call a JSON-RPC body makes; None when the body names none (empty, not JSON, a batch)."""
    if not body:
        return None
    if not partial:
        try:
            return _call_of(json.loads(body))
        except ValueError:  # not JSON or not UTF-8: the app answers the parse error
            return None
    text = body.decode("utf-8", "ignore")  # the cut may split a character
    members, _ = _members(text, 0, {"method": False, "params": True})
    return _call_of(members)


def of_request(headers: Mapping[str, str], body: bytes) -> McpCall | None:
    """The call to check: the body's when it names one (refusing headers that disagree), else the headers'.

    Raises InvalidRequest when Mcp-Method or Mcp-Name was sent and the body says otherwise.
    """
    method_header = headers.get(HEADER_MCP_METHOD)
    name_header = headers.get(HEADER_MCP_NAME)
    # A body of the full BODY_BYTES may be a cut one even when Envoy's partial-body header says
    # "false" (Envoy 1.40 does so now and then when the buffer fills exactly): read it as cut.
    partial = headers.get(PARTIAL_BODY_HEADER) == "true" or len(body) >= BODY_BYTES
    call = from_body(body, partial) if body else None
    if call is None:
        return McpCall(method_header, decode_header_value(name_header) if name_header else None) if method_header else None
    if method_header is None and name_header is None:
        return call
    if method_header != call.method:
        raise InvalidRequest(f"the {HEADER_MCP_METHOD} header ({method_header!r:.80}) does not match the body's method ({call.method!r:.80})")
    named = decode_header_value(name_header) if name_header else None
    if call.name is None:
        return McpCall(call.method, named)  # the name lies beyond a cut (or is missing): judge the header's
    if named != call.name:
        raise InvalidRequest(f"the {HEADER_MCP_NAME} header does not match the body's {NAME_PARAMS[call.method]} ({call.name!r:.80})")
    return call
