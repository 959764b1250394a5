"""The ways a Check can be refused: one exception per authz row of `mcp_pa.core.decisions`.

Every phase raises one of these; `response.py` turns it into the exact Envoy denial
(status, WWW-Authenticate, JSON body). Nothing else ever reaches the client, so no check is a 500.
"""

from __future__ import annotations

from typing import ClassVar

from mcp_pa.core import decisions
from mcp_pa.core.decisions import Decision


class Denied(Exception):
    """A refusal: its row of the decision table and a description safe to show users."""

    decision: ClassVar[Decision] = decisions.INVALID_TOKEN

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    @property
    def http_status(self) -> int:
        return self.decision.http_status

    @property
    def error(self) -> str:
        return self.decision.error

    @property
    def cacheable(self) -> bool:
        """Whether the identity cache may remember this failure briefly."""
        return self.decision.cacheable


class MissingCredential(Denied):
    """No credential at all (401 with only resource_metadata in WWW-Authenticate)."""

    decision = decisions.MISSING_CREDENTIAL


class InvalidRequest(Denied):
    """Two different credentials or a repeated Authorization header (400)."""

    decision = decisions.INVALID_REQUEST


class InvalidToken(Denied):
    """Malformed, badly signed, expired, wrong issuer/audience/type, revoked or unknown (401)."""

    decision = decisions.INVALID_TOKEN


class AccessDenied(Denied):
    """A valid identity that policy refuses: suspended tenant, disallowed org or domain (403)."""

    decision = decisions.ACCESS_DENIED


class InsufficientScope(Denied):
    """A valid identity lacking the permission the named MCP method or tool needs (403)."""

    decision = decisions.INSUFFICIENT_SCOPE

    def __init__(self, description: str, permission: str) -> None:
        super().__init__(description)
        self.permission = permission


class ProviderUnavailable(Denied):
    """The provider could not answer (outage, timeout, 5xx, 429): 503, never cached."""

    decision = decisions.PROVIDER_UNAVAILABLE

    def __init__(self, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after  # None: the table's default

