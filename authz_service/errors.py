"""The ways a Check can be refused, one exception per row of the contract's decision table.

Every phase raises one of these; `response.py` turns it into the exact Envoy denial
(status, WWW-Authenticate, JSON body). Nothing else ever reaches the client, so no check is a 500.
"""

from __future__ import annotations


class Denied(Exception):
    """A refusal with an HTTP status, an OAuth error code and a description safe to show users."""

    http_status: int = 401
    error: str = "invalid_token"
    cacheable: bool = True  # failures the identity cache may remember briefly

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class MissingCredential(Denied):
    """No credential at all (401 with only resource_metadata in WWW-Authenticate)."""

    error = ""


class InvalidRequest(Denied):
    """Two different credentials or a repeated Authorization header (400)."""

    http_status = 400
    error = "invalid_request"


class InvalidToken(Denied):
    """Malformed, badly signed, expired, wrong issuer/audience/type, revoked or unknown (401)."""


class AccessDenied(Denied):
    """A valid identity that policy refuses: suspended tenant, disallowed org or domain (403)."""

    http_status = 403
    error = "access_denied"


class InsufficientScope(Denied):
    """A valid identity lacking the permission the named MCP method or tool needs (403)."""

    http_status = 403
    error = "insufficient_scope"

    def __init__(self, description: str, permission: str) -> None:
        super().__init__(description)
        self.permission = permission


class ProviderUnavailable(Denied):
    """The provider could not answer (outage, timeout, 5xx, 429): 503, never cached."""

    http_status = 503
    error = "temporarily_unavailable"
    cacheable = False

    def __init__(self, description: str, retry_after: int = 5) -> None:
        super().__init__(description)
        self.retry_after = retry_after
