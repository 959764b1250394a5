"""Identity middleware: the x-mcp-* headers Envoy's ext_authz set become a typed `Identity`.

The app is reachable only through Envoy (it binds 127.0.0.1 by default), which strips every
client-sent x-mcp-* header and sets them only on allow. A request without them is refused
with the decision table's `missing_identity` 401, except on the public paths (metadata, health,
metrics).
"""

from __future__ import annotations

import json
import logging

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_app.db import schema_for
from mcp_pa.core import contract, decisions

log = logging.getLogger(__name__)

# Paths the app answers without identity: the contract's public routes plus the probes and
# metrics that the kubelet and Prometheus reach on the pod address, not through Envoy.
APP_PUBLIC_PATHS = frozenset((*contract.PUBLIC_PATHS, contract.READYZ_PATH, contract.METRICS_PATH))
_STATE_KEY = "identity"


class IdentityMiddleware:
    """Pure ASGI middleware: parse the identity once and keep it in the request state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in APP_PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            identity = contract.Identity.from_headers(Headers(scope=scope))
            schema_for(identity.tenant_id)  # reserved names too, before any SQL
        except ValueError as exc:
            log.warning("request without a valid identity refused", extra={"path": scope["path"], "reason": str(exc)})
            await _unauthorized(send, str(exc))
            return
        scope.setdefault("state", {})[_STATE_KEY] = identity
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, reason: str) -> None:
    decision = decisions.MISSING_IDENTITY
    rendered = decisions.reply(decision, (decision.description or "{reason}").format(reason=reason))
    body = json.dumps(rendered.body).encode()
    headers = [(k.encode(), v.encode()) for k, v in rendered.headers.items()]
    await send({"type": "http.response.start", "status": rendered.status, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def identity_of(request: object) -> contract.Identity | None:
    """The identity the middleware attached to a Starlette request (None when absent)."""
    if not isinstance(request, Request):
        return None
    identity = request.scope.get("state", {}).get(_STATE_KEY)
    return identity if isinstance(identity, contract.Identity) else None
