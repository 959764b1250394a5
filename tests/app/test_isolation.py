"""Tenants and users never see each other's rows: by id, by listing, and with RLS as the only wall."""

from __future__ import annotations

import asyncio
import base64

import asyncpg
import pytest

from mcp_app.db import TENANT_ROLE, Database
from tests.app.conftest import RunningApp, Tools, new_tenant, person


async def _make_everything(tools: Tools) -> dict[str, str]:
    """One row of every kind; returns the ids by kind."""
    project = await tools.ok("create_project", name="secret project")
    todo = await tools.ok("create_todo", title="secret todo")
    event = await tools.ok("create_calendar_event", title="secret meeting", starts_at="2030-01-01T10:00:00Z")
    document = await tools.ok(
        "upload_document", title="secret.txt", content_type="text/plain", data_base64=base64.b64encode(b"secret words").decode()
    )
    await tools.ok("update_status", status="busy", mood="secret mood")
    return {"project": project["id"], "todo": todo["id"], "event": event["id"], "document": document["id"]}


async def _assert_cannot_touch(intruder: Tools, ids: dict[str, str]) -> None:
    """Every by-id tool says "not found" for someone else's rows, and lists stay empty."""
    attempts = [
        ("get_project", {"project_id": ids["project"]}),
        ("update_project", {"project_id": ids["project"], "name": "mine now"}),
        ("add_project_task", {"project_id": ids["project"], "title": "sneaky"}),
        ("delete_project", {"project_id": ids["project"]}),
        ("create_todo", {"title": "linked", "project_id": ids["project"]}),
        ("update_todo", {"todo_id": ids["todo"], "title": "mine now"}),
        ("complete_todo", {"todo_id": ids["todo"]}),
        ("delete_todo", {"todo_id": ids["todo"]}),
        ("delete_calendar_event", {"event_id": ids["event"]}),
        ("get_document", {"document_id": ids["document"], "include_data": True}),
        ("delete_document", {"document_id": ids["document"]}),
    ]
    for tool, arguments in attempts:
        message = await intruder.error(tool, **arguments)
        assert "not found" in message, (tool, message)
    assert (await intruder.ok("list_projects"))["projects"] == []
    assert (await intruder.ok("list_todos", include_done=True))["todos"] == []
    assert (await intruder.ok("list_calendar_events", start="2029-12-20T00:00:00Z"))["events"] == []
    assert (await intruder.ok("list_documents"))["documents"] == []
    assert (await intruder.ok("search_documents", query="secret"))["results"] == []
    assert (await intruder.ok("get_status"))["mood"] is None


async def _assert_untouched(owner: Tools, ids: dict[str, str]) -> None:
    project = await owner.ok("get_project", project_id=ids["project"])
    assert project["name"] == "secret project" and project["tasks"] == []
    todos = (await owner.ok("list_todos"))["todos"]
    assert [(t["id"], t["title"], t["status"]) for t in todos] == [(ids["todo"], "secret todo", "open")]
    assert (await owner.ok("get_document", document_id=ids["document"]))["title"] == "secret.txt"
    events = await owner.ok("list_calendar_events", start="2029-12-20T00:00:00Z")
    assert [e["id"] for e in events["events"]] == [ids["event"]]


async def test_tenant_a_cannot_read_update_or_delete_tenant_b_rows_by_id(running_app: RunningApp) -> None:
    owner_id, intruder_id = person(new_tenant(), "bob"), person(new_tenant(), "eve")
    async with running_app.client(owner_id) as owner, running_app.client(intruder_id) as intruder:
        ids = await _make_everything(owner)
        await _assert_cannot_touch(intruder, ids)
        await _assert_untouched(owner, ids)


async def test_two_users_in_one_tenant_cannot_see_each_others_rows(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant, "bob")) as owner, running_app.client(person(tenant, "eve")) as intruder:
        ids = await _make_everything(owner)
        await _assert_cannot_touch(intruder, ids)
        await _assert_untouched(owner, ids)


async def test_rls_alone_limits_a_query_without_where_to_the_callers_rows(running_app: RunningApp) -> None:
    db = running_app.database
    tenant = new_tenant()
    alice, bob = person(tenant, "alice"), person(tenant, "bob")
    for who in (alice, bob):
        async with db.transaction(who) as conn:
            await conn.execute("INSERT INTO todos (title) VALUES ($1), ($1)", f"{who.user_id}'s")
            await conn.execute("INSERT INTO documents (kind, title, content, content_type) VALUES ('text', 't', 'x', 'text/plain')")
    async with db.transaction(alice) as conn:
        role = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert await conn.fetchval("SELECT current_user") == TENANT_ROLE
        assert (role["rolsuper"], role["rolbypassrls"]) == (False, False)
        rows = await conn.fetch("SELECT * FROM todos")
        assert {r["owner_id"] for r in rows} == {"apikey:alice"} and len(rows) == 2
        assert await conn.fetchval("SELECT count(*) FROM documents") == 1
        # A write without WHERE touches only the caller's rows too.
        assert await conn.execute("UPDATE todos SET title = 'overwritten'") == "UPDATE 2"
        assert await conn.execute("DELETE FROM documents") == "DELETE 1"
    async with db.transaction(alice) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # WITH CHECK: no rows in someone else's name
            await conn.execute("INSERT INTO todos (owner_id, title) VALUES ('apikey:bob', 'planted')")
    async with db.transaction(bob) as conn:
        assert [r["title"] for r in await conn.fetch("SELECT title FROM todos")] == ["apikey:bob's", "apikey:bob's"]
        assert await conn.fetchval("SELECT count(*) FROM documents") == 1


async def test_the_tenant_role_cannot_rewrite_the_audit_log_or_read_migrations(running_app: RunningApp) -> None:
    who = person(new_tenant())
    async with running_app.client(who) as tools:
        await tools.ok("whoami")
    async with running_app.database.transaction(who) as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE audit_events SET outcome = 'denied'")
    async with running_app.database.transaction(who) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_events")
    async with running_app.database.transaction(who) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM schema_migrations")


async def test_interleaved_transactions_on_pooled_connections_never_leak_tenant_or_user(pg_dsn: str) -> None:
    db = Database(pg_dsn, max_size=2)  # few connections, so every one is reused many times
    await db.start()
    try:
        callers = [person(new_tenant(), "ann"), person(new_tenant(), "ben")]
        callers.append(person(callers[0].tenant_id, "cat"))
        for who in callers:
            await db.ensure_tenant(who.tenant_id)

        async def work(who: object, round_no: int) -> None:
            async with db.transaction(who) as conn:
                for _ in range(3):
                    seen = await conn.fetchrow(
                        "SELECT current_setting('search_path') AS path, current_user AS role, "
                        "current_setting('mcp.user_id') AS user_id"
                    )
                    assert (seen["path"], seen["role"], seen["user_id"]) == (
                        f'"tenant_{who.tenant_id}"',
                        TENANT_ROLE,
                        who.user_id,
                    )
                    await asyncio.sleep(0)  # let the other transactions run in between
                await conn.execute("INSERT INTO todos (title) VALUES ($1)", f"{who.user_id} #{round_no}")

        await asyncio.gather(*(work(callers[i % 3], i) for i in range(60)))
        for who in callers:
            async with db.transaction(who) as conn:
                titles = [r["title"] for r in await conn.fetch("SELECT title FROM todos")]
            assert len(titles) == 20 and all(t.startswith(f"{who.user_id} #") for t in titles)
        async with db.pool.acquire() as conn:  # back in the pool: nothing of any caller remains
            seen = await conn.fetchrow(
                "SELECT current_setting('search_path') AS path, current_user = session_user AS own_role, "
                "coalesce(current_setting('mcp.user_id', true), '') AS user_id"
            )
        assert (seen["path"], seen["own_role"], seen["user_id"]) == ('"$user", public', True, "")
    finally:
        await db.close()


async def test_every_tenant_table_forces_row_level_security(running_app: RunningApp) -> None:
    tenant = new_tenant()
    await running_app.database.ensure_tenant(tenant)
    async with running_app.database.pool.acquire() as conn:
        tables = await conn.fetch(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'schema_migrations'",
            f"tenant_{tenant}",
        )
    assert len(tables) == 10  # 0001's seven, 0002's preferences, 0003's embeddings and embedding_jobs
    assert [t["relname"] for t in tables if not (t["relrowsecurity"] and t["relforcerowsecurity"] and t["policies"])] == []


async def test_reaching_another_tenants_schema_by_name_sees_nothing_even_as_the_same_user(running_app: RunningApp) -> None:
    db = running_app.database
    here, there = person(new_tenant(), "sam"), person(new_tenant(), "sam")  # one user id in two tenants
    async with db.transaction(there) as conn:
        await conn.execute("INSERT INTO todos (title) VALUES ('over there')")
        await conn.execute("INSERT INTO audit_events (tool, outcome) VALUES ('whoami', 'success')")
    other = f'"tenant_{there.tenant_id}"'
    async with db.transaction(here) as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {other}.todos") == 0
        assert await conn.fetchval(f"SELECT count(*) FROM {other}.audit_events") == 0
        assert await conn.execute(f"UPDATE {other}.todos SET title = 'hijacked'") == "UPDATE 0"
    async with db.transaction(here) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"INSERT INTO {other}.todos (title) VALUES ('planted')")
    async with db.transaction(there) as conn:
        assert [r["title"] for r in await conn.fetch("SELECT title FROM todos")] == ["over there"]
