"""Every tool's round trip through the real MCP client, Streamable HTTP and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

from mcp_pa.core import contract
from tests.app.conftest import ADMIN, RunningApp, new_tenant, person


async def test_the_server_lists_exactly_the_contract_tools_and_resources(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        listed = await tools.client.list_tools()
        resources = await tools.client.list_resources()
    assert sorted(t.name for t in listed.tools) == sorted(contract.TOOL_PERMISSIONS)
    assert sorted(str(r.uri) for r in resources.resources) == sorted(contract.RESOURCE_URIS)
    schemas = {t.name: t.input_schema for t in listed.tools}
    assert "enum" in json.dumps(schemas["create_todo"]["properties"]["priority"]) or "$ref" in json.dumps(
        schemas["create_todo"]["properties"]["priority"]
    )


async def test_whoami_returns_the_identity_from_the_headers(running_app: RunningApp) -> None:
    me = person(new_tenant(), "zoe")
    me = contract.Identity(me.user_id, me.tenant_id, me.permissions, me.provider, me.email, name="Zoë Ünal")
    async with running_app.client(me) as tools:
        got = await tools.ok("whoami")
    assert got == {
        "user_id": "apikey:zoe",
        "tenant_id": me.tenant_id,
        "permissions": ["read", "write"],
        "provider": "apikey",
        "email": "zoe@example.com",
        "name": "Zoë Ünal",
        "timezone": "UTC",
    }


async def test_status_round_trip_keeps_omitted_fields(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert (await tools.ok("get_status"))["status"] == "available"
        await tools.ok("update_status", status="busy", mood="focused", focus="quarterly report")
        await tools.ok("update_status", note="back at 3")
        status = await tools.ok("get_status")
        assert (status["status"], status["mood"], status["focus"], status["note"]) == (
            "busy",
            "focused",
            "quarterly report",
            "back at 3",
        )
        assert "nothing to update" in await tools.error("update_status")
        assert "status" in await tools.error("update_status", status="sleeping")


async def test_projects_with_tasks_round_trip(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        project = await tools.ok("create_project", name="Garden", description="raised beds", due_date="2026-12-31")
        pid = project["id"]
        assert project["status"] == "active" and project["due_date"] == "2026-12-31"
        task = await tools.ok("add_project_task", project_id=pid, title="buy soil", due_date="2026-12-01")
        assert task["project_id"] == pid and task["done"] is False
        todo = await tools.ok("create_todo", title="call the builder", project_id=pid)
        got = await tools.ok("get_project", project_id=pid)
        assert [t["title"] for t in got["tasks"]] == ["buy soil"]
        assert [t["id"] for t in got["todos"]] == [todo["id"]]
        listed = await tools.ok("list_projects")
        assert [(p["name"], p["task_count"]) for p in listed["projects"]] == [("Garden", 1)]
        updated = await tools.ok("update_project", project_id=pid, status="on_hold", name="Garden 2027")
        assert (updated["name"], updated["status"], updated["description"]) == ("Garden 2027", "on_hold", "raised beds")
        assert (await tools.ok("list_projects", status="active"))["projects"] == []
        assert (await tools.ok("delete_project", project_id=pid)) == {"deleted": pid}
        assert "not found" in await tools.error("get_project", project_id=pid)
        assert "not found" in await tools.error("add_project_task", project_id=pid, title="x")
        orphan = (await tools.ok("list_todos"))["todos"][0]
        assert orphan["id"] == todo["id"] and orphan["project_id"] is None


async def test_todos_round_trip_with_filters_and_completion(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        soon = await tools.ok("create_todo", title="pay rent", priority="urgent", due_date="2026-12-01", notes="online")
        later = await tools.ok("create_todo", title="plan holiday", priority="low", due_date="2027-06-01")
        assert soon["priority"] == "urgent" and soon["status"] == "open"
        due = await tools.ok("list_todos", due_before="2026-12-31")
        assert [t["id"] for t in due["todos"]] == [soon["id"]]
        assert [t["id"] for t in (await tools.ok("list_todos", priority="low"))["todos"]] == [later["id"]]
        changed = await tools.ok("update_todo", todo_id=later["id"], status="in_progress", title="plan summer holiday")
        assert (changed["status"], changed["title"]) == ("in_progress", "plan summer holiday")
        done = await tools.ok("complete_todo", todo_id=soon["id"])
        assert done["status"] == "done" and done["completed_at"]
        assert [t["id"] for t in (await tools.ok("list_todos"))["todos"]] == [later["id"]]
        assert [t["id"] for t in (await tools.ok("list_todos", status="done"))["todos"]] == [soon["id"]]
        reopened = await tools.ok("update_todo", todo_id=soon["id"], status="open")
        assert reopened["completed_at"] is None
        assert (await tools.ok("delete_todo", todo_id=soon["id"])) == {"deleted": soon["id"]}
        assert "not found" in await tools.error("complete_todo", todo_id=soon["id"])
        assert "priority" in await tools.error("create_todo", title="x", priority="whenever")
        assert "due_date" in await tools.error("create_todo", title="x", due_date="next tuesday")


async def test_calendar_round_trip_and_window(running_app: RunningApp) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    async with running_app.client(person(new_tenant())) as tools:
        event = await tools.ok(
            "create_calendar_event", title="dentist", starts_at=(now + dt.timedelta(days=2)).isoformat(), location="Main St"
        )
        assert dt.datetime.fromisoformat(event["ends_at"]) - dt.datetime.fromisoformat(event["starts_at"]) == dt.timedelta(hours=1)
        naive = (now + dt.timedelta(days=40)).replace(tzinfo=None).isoformat()
        far = await tools.ok("create_calendar_event", title="conference", starts_at=naive)
        assert dt.datetime.fromisoformat(far["starts_at"]).utcoffset() == dt.timedelta(0)
        window = await tools.ok("list_calendar_events")
        assert [e["title"] for e in window["events"]] == ["dentist"]
        wide = await tools.ok("list_calendar_events", end=(now + dt.timedelta(days=60)).isoformat())
        assert [e["title"] for e in wide["events"]] == ["dentist", "conference"]
        assert "before starts_at" in await tools.error(
            "create_calendar_event", title="x", starts_at=now.isoformat(), ends_at=(now - dt.timedelta(hours=1)).isoformat()
        )
        assert (await tools.ok("delete_calendar_event", event_id=event["id"])) == {"deleted": event["id"]}
        assert "not found" in await tools.error("delete_calendar_event", event_id=event["id"])


async def test_documents_text_upload_link_search_and_delete(running_app: RunningApp) -> None:
    payload = b"Quarterly revenue grew because the espresso machines sold well.\n"
    async with running_app.client(person(new_tenant())) as tools:
        note = await tools.ok("create_document", title="Meeting notes", content="We discussed the kangaroo migration.", tags=["work"])
        upload = await tools.ok(
            "upload_document", title="report.txt", content_type="text/plain", data_base64=base64.b64encode(payload).decode()
        )
        assert upload["sha256"] == hashlib.sha256(payload).hexdigest() and upload["size_bytes"] == len(payload)
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        image = await tools.ok("upload_document", title="logo", content_type="image/png", data_base64=base64.b64encode(png).decode())
        link = await tools.ok("create_external_document", title="MCP spec", url="https://modelcontextprotocol.io/specification")
        assert link["url"] == "https://modelcontextprotocol.io/specification" and link["kind"] == "link"

        listed = await tools.ok("list_documents")
        assert [d["id"] for d in listed["documents"]] == [link["id"], image["id"], upload["id"], note["id"]]
        assert [d["id"] for d in (await tools.ok("list_documents", kind="upload"))["documents"]] == [image["id"], upload["id"]]

        got = await tools.ok("get_document", document_id=note["id"])
        assert got["content"] == "We discussed the kangaroo migration." and got["tags"] == ["work"]
        assert "data_base64" not in await tools.ok("get_document", document_id=image["id"])
        full = await tools.ok("get_document", document_id=image["id"], include_data=True)
        assert base64.b64decode(full["data_base64"]) == png

        found = await tools.ok("search_documents", query="espresso")
        assert [r["id"] for r in found["results"]] == [upload["id"]]
        assert "**espresso**" in found["results"][0]["snippet"] and found["results"][0]["rank"] > 0
        assert [r["id"] for r in (await tools.ok("search_documents", query="kangaroos"))["results"]] == [note["id"]]
        assert (await tools.ok("search_documents", query="\"giraffe\""))["results"] == []
        assert "no searchable words" in await tools.error("search_documents", query="the and of")

        assert (await tools.ok("delete_document", document_id=note["id"])) == {"deleted": note["id"]}
        assert "not found" in await tools.error("get_document", document_id=note["id"])


async def test_dashboard_collects_the_next_days(running_app: RunningApp) -> None:
    today = dt.datetime.now(dt.timezone.utc)
    async with running_app.client(person(new_tenant())) as tools:
        await tools.ok("update_status", status="away", focus="travel")
        await tools.ok("create_project", name="Move house")
        await tools.ok("create_project", name="Old thing", status="completed")
        await tools.ok("create_todo", title="overdue", due_date=(today - dt.timedelta(days=1)).date().isoformat())
        await tools.ok("create_todo", title="this week", due_date=(today + dt.timedelta(days=3)).date().isoformat())
        await tools.ok("create_todo", title="next month", due_date=(today + dt.timedelta(days=30)).date().isoformat())
        await tools.ok("create_calendar_event", title="soon", starts_at=(today + dt.timedelta(days=1)).isoformat())
        await tools.ok("create_calendar_event", title="later", starts_at=(today + dt.timedelta(days=20)).isoformat())
        await tools.ok("create_document", title="fresh", content="hello")
        board = await tools.ok("get_dashboard")
    assert board["status"]["status"] == "away"
    assert [p["name"] for p in board["active_projects"]] == ["Move house"]
    assert [t["title"] for t in board["todos_due"]] == ["overdue", "this week"]
    assert [e["title"] for e in board["upcoming_events"]] == ["soon"]
    assert [d["title"] for d in board["newest_documents"]] == ["fresh"]


async def test_resources_return_the_callers_data_as_json(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        await tools.ok("create_todo", title="resource todo")
        await tools.ok("update_status", status="busy")
        todos = await tools.client.read_resource("pa://todos")
        status = await tools.client.read_resource("pa://status")
        for uri, key in (("pa://projects", "projects"), ("pa://calendar", "events"), ("pa://documents", "documents")):
            assert json.loads((await tools.client.read_resource(uri)).contents[0].text) == {key: [], "next_cursor": None}
    assert [t["title"] for t in json.loads(todos.contents[0].text)["todos"]] == ["resource todo"]
    assert json.loads(status.contents[0].text)["status"] == "busy"


async def test_admin_lists_the_tenant_audit_log(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant, "bob")) as bob:
        await bob.ok("create_todo", title="bob's")
    async with running_app.client(person(tenant, "root", ADMIN), request_id="req-admin-1") as admin:
        events = (await admin.ok("list_audit_events"))["events"]
        assert [(e["user_id"], e["tool"], e["outcome"]) for e in events] == [("apikey:bob", "create_todo", "success")]
        filtered = await admin.ok("list_audit_events", user_id="apikey:root")
        assert [(e["tool"], e["request_id"]) for e in filtered["events"]] == [("list_audit_events", "req-admin-1")]
        assert (await admin.ok("list_audit_events", outcome="denied"))["events"] == []
