"""The audit log: a row for every tool call, success, denied or failed; never bodies."""

from __future__ import annotations

import base64
import uuid

import pytest
from mcp.shared.exceptions import MCPError

from tests.app.conftest import ADMIN, READ_ONLY, RunningApp, new_tenant, person


async def _audit_rows(running_app: RunningApp, tenant: str, user: str) -> list[dict]:
    async with running_app.client(person(tenant, "auditor", ADMIN)) as admin:
        events = (await admin.ok("list_audit_events", user_id=f"apikey:{user}", limit=500))["events"]
    return list(reversed(events))  # oldest first


async def test_successful_call_is_audited_with_target_and_request_id(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant, "ann"), request_id="req-success-1") as tools:
        todo = await tools.ok("create_todo", title="audited")
        await tools.ok("complete_todo", todo_id=todo["id"])
    rows = await _audit_rows(running_app, tenant, "ann")
    assert [(r["tool"], r["target_id"], r["outcome"], r["request_id"]) for r in rows] == [
        ("create_todo", todo["id"], "success", "req-success-1"),
        ("complete_todo", todo["id"], "success", "req-success-1"),
    ]
    assert all(r["at"] for r in rows)


async def test_denied_call_is_audited_as_denied(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant, "ro", READ_ONLY), request_id="req-denied") as tools:
        await tools.error("create_todo", title="nope")
        await tools.error("list_audit_events")
    rows = await _audit_rows(running_app, tenant, "ro")
    assert [(r["tool"], r["outcome"], r["detail"], r["request_id"]) for r in rows] == [
        ("create_todo", "denied", "missing permission write", "req-denied"),
        ("list_audit_events", "denied", "missing permission admin", "req-denied"),
    ]


async def test_failed_calls_are_audited_as_errors_and_change_nothing(running_app: RunningApp) -> None:
    tenant = new_tenant()
    missing = str(uuid.uuid4())
    async with running_app.client(person(tenant, "ann")) as tools:
        await tools.error("complete_todo", todo_id=missing)
        await tools.error("create_todo", title="")
        await tools.error("create_external_document", title="x", url="javascript:alert(1)")
        with pytest.raises(MCPError, match="unknown tool"):
            await tools.client.call_tool("no_such_tool", {})
        assert (await tools.ok("list_documents"))["documents"] == []
    rows = await _audit_rows(running_app, tenant, "ann")
    assert [(r["tool"], r["target_id"], r["outcome"], r["detail"]) for r in rows] == [
        ("complete_todo", missing, "error", f"todo {missing} not found"),
        ("create_todo", None, "error", "invalid arguments or unknown tool"),
        ("create_external_document", None, "error", "only http and https links are allowed; got scheme 'javascript'"),
        ("no_such_tool", None, "error", "unknown tool"),
        ("list_documents", None, "success", ""),
    ]


async def test_audit_rows_never_hold_document_bodies(running_app: RunningApp) -> None:
    tenant = new_tenant()
    secret = "the-launch-code-is-0000"
    async with running_app.client(person(tenant, "ann")) as tools:
        await tools.ok("create_document", title="plans", content=secret)
        await tools.ok("upload_document", title="f", content_type="text/plain", data_base64=base64.b64encode(secret.encode()).decode())
        await tools.error("create_document", title="", content=secret)
        await tools.ok("search_documents", query=secret)
    rows = await _audit_rows(running_app, tenant, "ann")
    assert len(rows) == 4
    assert all(secret not in str(value) for row in rows for value in row.values())
    assert rows[1]["detail"] == f"text/plain, {len(secret)} bytes"


async def test_non_admin_sees_no_tenant_audit_and_admin_sees_all_users(running_app: RunningApp) -> None:
    tenant = new_tenant()
    for user in ("ann", "ben"):
        async with running_app.client(person(tenant, user)) as tools:
            await tools.ok("whoami")
    async with running_app.client(person(tenant, "boss", ADMIN)) as admin:
        events = (await admin.ok("list_audit_events"))["events"]
        assert {e["user_id"] for e in events} == {"apikey:ann", "apikey:ben"}
        only_denied = await admin.ok("list_audit_events", outcome="denied")
        assert only_denied["events"] == []
    # The RLS policy alone keeps a non-admin's raw read to their own rows.
    async with running_app.database.transaction(person(tenant, "ann")) as conn:
        assert {r["user_id"] for r in await conn.fetch("SELECT user_id FROM audit_events")} == {"apikey:ann"}


async def test_unexpected_failure_is_an_internal_error_with_request_id_and_is_audited(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant, "ann"), request_id="req-broken-7") as tools:
        await tools.ok("whoami")  # creates the schema
        async with running_app.database.pool.acquire() as conn:  # damage it behind the app's back
            await conn.execute(f'DROP TABLE "tenant_{tenant}".todos')
        message = await tools.error("list_todos")
    assert "internal error in list_todos; quote request id req-broken-7" in message
    assert "todos" not in message.replace("list_todos", "")  # no database text leaks to the caller
    rows = await _audit_rows(running_app, tenant, "ann")
    assert [(r["tool"], r["outcome"], r["request_id"]) for r in rows] == [
        ("whoami", "success", "req-broken-7"),
        ("list_todos", "error", "req-broken-7"),
    ]
