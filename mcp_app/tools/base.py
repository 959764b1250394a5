"""What every tool shares: the call in progress, the permission gate, one audited transaction.

`ToolGate` is MCP server middleware: it runs around every `tools/call` before the arguments
are validated, refuses a caller without the tool's permission (an MCP tool error naming the
missing permission, plus an audit row with outcome `denied`) and audits calls that failed
before the tool body ran. `transaction()` (the gate's `Toolbox.call()`) gives a tool body its
tenant transaction and writes the `success` audit row in that same transaction, or an `error`
row in a fresh one. Tools are plain functions, so the gate hands them the call through a
context variable rather than an argument the MCP schema would show.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Mapping, TypeVar

import asyncpg
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent
from mcp_types import INVALID_PARAMS, INVALID_REQUEST
from prometheus_client import Counter, Histogram

from mcp_app.db import Database
from mcp_app.identity import identity_of
from mcp_pa.core import contract

log = logging.getLogger(__name__)

TOOL_CALLS = Counter("mcp_app_tool_calls_total", "Tool calls by tool and outcome", ["tool", "outcome"])
TOOL_SECONDS = Histogram("mcp_app_tool_call_seconds", "Tool call duration", ["tool"])

OUTCOME_SUCCESS = "success"
OUTCOME_DENIED = "denied"
OUTCOME_ERROR = "error"
# Column limits of audit_events (0001_initial.sql).
_AUDIT_TOOL_MAX = 100
_AUDIT_TARGET_MAX = 100
_AUDIT_REQUEST_ID_MAX = 200
_AUDIT_DETAIL_MAX = 300
# The code protocol versions up to 2025-11-25 give an unknown resource; later ones use
# INVALID_PARAMS (SEP-2164), which is what the SDK raises.
RESOURCE_NOT_FOUND_LEGACY = -32002
RESOURCE_NOT_FOUND_INVALID_PARAMS_SINCE = "2026-07-28"

_Function = TypeVar("_Function", bound=Callable[..., Any])


@dataclass(frozen=True)
class ToolHints:
    """What a tool says about itself beyond its signature; None leaves the registry's derived value."""

    title: str | None = None
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    output_schema: dict[str, Any] | None = None


def hints(**overrides: Any) -> Callable[[_Function], _Function]:
    """Override a derived annotation, title or output schema: `@hints(idempotent=True)` above a tool function."""
    given = ToolHints(**overrides)  # a misspelt name fails here, at import

    def mark(tool: _Function) -> _Function:
        tool.__dict__["tool_hints"] = given
        return tool

    return mark


def hints_of(tool: Callable[..., Any]) -> ToolHints:
    """The overrides a tool function carries (none by default)."""
    found = getattr(tool, "tool_hints", None)
    return found if isinstance(found, ToolHints) else ToolHints()


class ToolFailure(ToolError):
    """A failure whose message is written for the caller and safe to keep in the audit log."""


class NotFound(ToolFailure):
    """The item does not exist for this caller (other tenants' and users' rows look the same)."""

    def __init__(self, kind: str, item_id: uuid.UUID | str) -> None:
        super().__init__(f"{kind} {item_id} not found")


@dataclass
class ToolCall:
    """The tool call in progress, as the gate saw it."""

    tool: str
    identity: contract.Identity
    request_id: str | None
    toolbox: Toolbox
    audited: bool = False
    # The arguments as sent: update tools tell an explicit null (clear) from an omitted field (keep).
    arguments: Mapping[str, Any] = dataclasses.field(default_factory=dict)


_current_call: ContextVar[ToolCall | None] = ContextVar("mcp_app_tool_call", default=None)


def current_call() -> ToolCall:
    """The call the gate is running; a tool body reached any other way is refused."""
    call = _current_call.get()
    if call is None:
        raise ToolFailure("no authenticated caller for this request")
    return call


def transaction(*, audit: bool = True) -> contextlib.AbstractAsyncContextManager[Tx]:
    """The current call's audited tenant transaction: `async with transaction() as tx:` in a tool body."""
    return current_call().toolbox.call(audit=audit)


@dataclass
class Tx:
    """A tool's transaction: the connection, the caller, and what the audit row should say."""

    conn: asyncpg.Connection
    identity: contract.Identity
    target: str | None = None
    detail: str = ""


async def write_audit(
    conn: asyncpg.Connection, call: ToolCall, outcome: str, target: str | None = None, detail: str = ""
) -> None:
    """One audit row; never pass document bodies or credentials as detail."""
    await conn.execute(
        "INSERT INTO audit_events (tool, target_id, outcome, request_id, detail) VALUES ($1, $2, $3, $4, $5)",
        call.tool[:_AUDIT_TOOL_MAX],
        target[:_AUDIT_TARGET_MAX] if target else None,
        outcome,
        call.request_id[:_AUDIT_REQUEST_ID_MAX] if call.request_id else None,
        detail[:_AUDIT_DETAIL_MAX],
    )
    call.audited = True
    # Only known names become label values, so a caller cannot grow the metric without bound.
    TOOL_CALLS.labels(call.tool if call.tool in contract.TOOL_PERMISSIONS else "unknown", outcome).inc()


def _database_failure(exc: Exception) -> ToolFailure | None:
    """A constraint the input broke, said plainly; None for anything that is our fault."""
    if isinstance(exc, asyncpg.CheckViolationError):
        return ToolFailure(f"a value is out of range or not allowed ({exc.constraint_name or 'check'})")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return ToolFailure("a referenced item does not exist")
    if isinstance(exc, asyncpg.UniqueViolationError):
        return ToolFailure("an item with these values already exists")
    if isinstance(exc, (asyncpg.DataError, asyncpg.ProgramLimitExceededError)):
        return ToolFailure("a value was refused by the database (too long or malformed)")
    if isinstance(exc, _DATABASE_UNAVAILABLE):
        return ToolFailure("the database is unavailable right now; try again shortly")
    return None


# The database is down, restarting or dropped the connection: a retry is the caller's move.
# (InternalClientError is asyncpg's state error on a connection cut mid-operation; tools never
# share a connection between operations, so it only arises that way.)
_DATABASE_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class Toolbox:
    """The tenant database as tools see it: one audited transaction per call."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextlib.asynccontextmanager
    async def call(self, *, audit: bool = True) -> AsyncIterator[Tx]:
        """Run the tool body in the caller's tenant transaction and audit its outcome."""
        call = current_call()
        tx: Tx | None = None
        try:
            async with self.db.transaction(call.identity) as conn:
                tx = Tx(conn, call.identity)
                yield tx
                if audit:
                    await write_audit(conn, call, OUTCOME_SUCCESS, tx.target, tx.detail)
        except Exception as exc:
            # Only the failure's own message reaches the caller and the audit row: ours, a
            # constraint said plainly, or "internal error" with the request id to quote.
            failure = exc if isinstance(exc, ToolFailure) else _database_failure(exc) or self._internal(call, exc)
            if audit:
                await self.audit_apart(call, OUTCOME_ERROR, tx.target if tx else None, str(failure))
            if failure is exc:
                raise
            raise failure from exc

    def _internal(self, call: ToolCall, exc: Exception) -> ToolFailure:
        # The traceback stays in the server log; the caller gets the request id to quote.
        log.error("tool failed", exc_info=exc, extra={"tool": call.tool, "request_id": call.request_id})
        return ToolFailure(f"internal error in {call.tool}; quote request id {call.request_id or 'n/a'} to the operator")

    async def audit_apart(self, call: ToolCall, outcome: str, target: str | None, detail: str) -> None:
        """An audit row in its own transaction (denied and failed calls have nothing to commit)."""
        try:
            async with self.db.transaction(call.identity) as conn:
                await write_audit(conn, call, outcome, target, detail)
        except Exception:  # the caller already gets an error; never mask it with an audit failure
            log.exception("audit write failed", extra={"tool": call.tool, "outcome": outcome})


class ToolGate:
    """MCP server middleware: identity and permission check around tools and resources."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" and ctx.method not in contract.METHOD_PERMISSIONS:
            return await call_next(ctx)
        identity = identity_of(ctx.request)
        if identity is None:  # the HTTP middleware refuses these first; fail closed regardless
            raise MCPError(code=INVALID_REQUEST, message="no authenticated caller")
        params: Mapping[str, Any] = ctx.params or {}
        name = params.get("name") if ctx.method == "tools/call" else None
        call = ToolCall(
            tool=name if isinstance(name, str) else ctx.method,
            identity=identity,
            request_id=_request_id(ctx.request),
            toolbox=self.toolbox,
            arguments=_arguments(params) if ctx.method == "tools/call" else {},
        )
        token = _current_call.set(call)
        try:
            if ctx.method == "tools/call":
                return await self._tool(ctx, call_next, call)
            needed = contract.METHOD_PERMISSIONS[ctx.method]
            if not identity.has(needed):
                raise MCPError(code=INVALID_REQUEST, message=_denied_message(ctx.method, needed, identity))
            if ctx.method == "resources/read":
                return await _read_resource(ctx, call_next)
            return await call_next(ctx)
        finally:
            _current_call.reset(token)

    async def _tool(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, call: ToolCall) -> HandlerResult:
        needed = contract.TOOL_PERMISSIONS.get(call.tool)
        if needed is None:
            # A protocol error, not a tool result: the caller asked for something that is not there.
            await self.toolbox.audit_apart(call, OUTCOME_ERROR, None, "unknown tool")
            raise MCPError(code=INVALID_PARAMS, message=f"unknown tool {call.tool[:_AUDIT_TOOL_MAX]!r}; tools/list names every tool")
        if not call.identity.has(needed):
            message = _denied_message(f"the tool {call.tool}", needed, call.identity)
            await self.toolbox.audit_apart(call, OUTCOME_DENIED, None, f"missing permission {needed}")
            return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
        started = time.perf_counter()
        result = await call_next(ctx)
        if call.tool in contract.TOOL_PERMISSIONS:
            TOOL_SECONDS.labels(call.tool).observe(time.perf_counter() - started)
        if _is_error(result) and not call.audited:
            # Rejected before the body ran (unknown tool, arguments outside the schema); the
            # SDK's message may quote the arguments, so the audit row keeps only the fact.
            await self.toolbox.audit_apart(call, OUTCOME_ERROR, None, "invalid arguments or unknown tool")
        return result


async def _read_resource(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    try:
        return await call_next(ctx)
    except MCPError as exc:
        legacy = ctx.protocol_version < RESOURCE_NOT_FOUND_INVALID_PARAMS_SINCE
        if exc.error.code == INVALID_PARAMS and legacy:
            raise MCPError(code=RESOURCE_NOT_FOUND_LEGACY, message=exc.error.message, data=exc.error.data) from exc
        raise


def _arguments(params: Mapping[str, Any]) -> Mapping[str, Any]:
    arguments = params.get("arguments")
    return arguments if isinstance(arguments, Mapping) else {}


def _is_error(result: HandlerResult) -> bool:
    # The SDK hands middleware the result already shaped for the wire (a dict) or as a model.
    if isinstance(result, dict):
        return bool(result.get("isError") or result.get("is_error"))
    return bool(getattr(result, "is_error", False))


def _denied_message(what: str, needed: str, identity: contract.Identity) -> str:
    held = contract.format_permissions(identity.permissions) or "none"
    return (
        f"permission denied: {what} needs the '{needed}' permission (scope {contract.scope_for(needed)}); "
        f"you have: {held}"
    )


def _request_id(request: object) -> str | None:
    headers = getattr(request, "headers", None)
    return headers.get(contract.HEADER_REQUEST_ID) if headers is not None else None
