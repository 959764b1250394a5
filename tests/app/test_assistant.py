"""The assistant surface of issue 14 through a real MCP client over real PostgreSQL: the new tools,
paging, null-clearing, time zones across the 2026 DST changes, recurrence, .ics round trips, search."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Awaitable, Callable

import pytest

from mcp_app.tools.paging import encode
from tests.app.conftest import ADMIN, RunningApp, Tools, new_tenant, person

PAGED = 230


async def page_all(tools: Tools, tool: str, key: str, limit: int = 50, **arguments: Any) -> list[dict[str, Any]]:
    """Every item of a list tool, page by page; each page carries next_cursor (None on the last)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await tools.ok(tool, limit=limit, **({"cursor": cursor} if cursor else {}), **arguments)
        assert "next_cursor" in page
        items.extend(page[key])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page[key]) == limit


async def seed(app: RunningApp, identity: Any, sql: str) -> None:
    async with app.database.transaction(identity) as conn:
        await conn.execute(sql)


# --- paging -------------------------------------------------------------------------------------

SEEDS: dict[str, str] = {
    "list_todos": f"INSERT INTO todos (title, due_date, priority) SELECT 'todo ' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE DATE '2026-05-01' + i % 7 END, "
    f"(ARRAY['low','medium','high','urgent'])[1 + i % 4] FROM generate_series(1, {PAGED}) i",
    "list_projects": f"INSERT INTO projects (name, due_date) SELECT 'project ' || i, CASE WHEN i % 2 = 0 THEN NULL ELSE DATE '2026-06-01' END "
    f"FROM generate_series(1, {PAGED}) i",
    "list_documents": "INSERT INTO documents (kind, title, content_type, created_at) SELECT 'text', 'doc ' || i, 'text/markdown', "
    f"TIMESTAMPTZ '2026-01-01' + (i % 10) * interval '1 hour' FROM generate_series(1, {PAGED}) i",
    "list_calendar_events": "INSERT INTO calendar_events (title, starts_at, ends_at) SELECT 'event ' || i, "
    "TIMESTAMPTZ '2026-04-01T09:00Z' + (i % 20) * interval '1 day', "
    f"TIMESTAMPTZ '2026-04-01T10:00Z' + (i % 20) * interval '1 day' FROM generate_series(1, {PAGED}) i",
    "search": f"INSERT INTO todos (title) SELECT 'Kaffee kaufen ' || i FROM generate_series(1, {PAGED}) i",
}
KEYS = {"list_todos": "todos", "list_projects": "projects", "list_documents": "documents", "list_calendar_events": "events", "search": "results"}
EXTRA: dict[str, dict[str, Any]] = {
    "list_calendar_events": {"start": "2026-04-01", "end": "2026-05-01"},
    "search": {"query": "kaffee", "mode": "keyword"},  # keyword pages through every match; hybrid ranks the best 200 of each list
}


@pytest.mark.parametrize("tool", list(SEEDS))
async def test_paging_230_items_loses_and_repeats_nothing(running_app: RunningApp, tool: str) -> None:
    me = person(new_tenant())
    async with running_app.client(me) as tools:
        await tools.ok("whoami")  # creates the schema
        await seed(running_app, me, SEEDS[tool])
        items = await page_all(tools, tool, KEYS[tool], limit=50 if tool != "search" else 40, **EXTRA.get(tool, {}))
    ids = [i["id"] for i in items]
    assert len(ids) == PAGED and len(set(ids)) == PAGED


async def test_audit_log_pages_without_loss_or_duplicates(running_app: RunningApp) -> None:
    admin = person(new_tenant(), "root", ADMIN)
    async with running_app.client(admin) as tools:
        await tools.ok("whoami")
        sql = f"INSERT INTO audit_events (tool, outcome, at) SELECT 'x', 'success', TIMESTAMPTZ '2026-01-01' FROM generate_series(1, {PAGED})"
        await seed(running_app, admin, sql)
        events = await page_all(tools, "list_audit_events", "events", limit=100)
    assert len({e["id"] for e in events}) == len(events) >= PAGED


async def test_a_bad_or_foreign_cursor_is_a_clear_error(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert "cursor: not a cursor of list_todos" in await tools.error("list_todos", cursor="nonsense!")
        foreign = encode("list_documents", ["2026-01-01T00:00:00+00:00", "x"])
        assert "belongs to list_documents, not list_todos" in await tools.error("list_todos", cursor=foreign)


async def test_list_resources_page_and_items_have_templates(running_app: RunningApp) -> None:
    me = person(new_tenant())
    async with running_app.client(me) as tools:
        todo = await tools.ok("create_todo", title="one")
        await seed(running_app, me, "INSERT INTO todos (title) SELECT 'more ' || i FROM generate_series(1, 60) i")
        first = json.loads((await tools.client.read_resource("pa://todos")).contents[0].text)
        second = json.loads((await tools.client.read_resource(f"pa://todos?cursor={first['next_cursor']}")).contents[0].text)
        item = json.loads((await tools.client.read_resource(f"pa://todos/{todo['id']}")).contents[0].text)
        templates = {str(t.uri_template) for t in (await tools.client.list_resource_templates()).resource_templates}
    assert len(first["todos"]) == 50 and len(second["todos"]) == 11 and second["next_cursor"] is None
    assert not {t["id"] for t in first["todos"]} & {t["id"] for t in second["todos"]}
    assert item["title"] == "one"
    assert {"pa://todos/{id}", "pa://projects/{id}", "pa://calendar/{id}", "pa://documents/{id}"} <= templates


# --- the new tools and null-clearing -------------------------------------------------------------


async def test_project_tasks_can_be_updated_completed_and_deleted(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        project = await tools.ok("create_project", name="Garden")
        task = await tools.ok("add_project_task", project_id=project["id"], title="dig", due_date="2026-05-01")
        renamed = await tools.ok("update_project_task", task_id=task["id"], title="dig deeper")
        assert (renamed["title"], renamed["due_date"]) == ("dig deeper", "2026-05-01")
        cleared = await tools.ok("update_project_task", task_id=task["id"], due_date=None)
        assert cleared["due_date"] is None and cleared["title"] == "dig deeper"
        done = await tools.ok("complete_project_task", task_id=task["id"])
        assert done["done"] is True and done["completed_at"]
        assert (await tools.ok("get_project", project_id=project["id"]))["tasks"][0]["done"] is True
        await tools.ok("delete_project_task", task_id=task["id"])
        assert (await tools.ok("get_project", project_id=project["id"]))["tasks"] == []
        assert "not found" in await tools.error("complete_project_task", task_id=task["id"])


UpdateCase = tuple[str, Callable[[Tools], Awaitable[dict[str, Any]]], str, str, Any, Any]


async def _todo(tools: Tools) -> dict[str, Any]:
    project = await tools.ok("create_project", name="p")
    return await tools.ok("create_todo", title="t", notes="n", due_date="2026-05-01", project_id=project["id"])


async def _project(tools: Tools) -> dict[str, Any]:
    return await tools.ok("create_project", name="p", description="d", due_date="2026-05-01")


async def _event(tools: Tools) -> dict[str, Any]:
    return await tools.ok("create_calendar_event", title="e", starts_at="2026-05-01T09:00:00Z", location="here", description="d", recurrence="FREQ=DAILY")


async def _document(tools: Tools) -> dict[str, Any]:
    return await tools.ok("create_document", title="d", content="body", tags=["a"])


# tool, make, id argument, field to clear, what it becomes, the required field that cannot be cleared
CLEARING: list[tuple[str, Callable[[Tools], Awaitable[dict[str, Any]]], str, str, Any, str]] = [
    ("update_todo", _todo, "todo_id", "due_date", None, "title"),
    ("update_todo", _todo, "todo_id", "project_id", None, "priority"),
    ("update_todo", _todo, "todo_id", "notes", "", "status"),
    ("update_project", _project, "project_id", "due_date", None, "name"),
    ("update_project", _project, "project_id", "description", "", "status"),
    ("update_calendar_event", _event, "event_id", "location", "", "title"),
    ("update_calendar_event", _event, "event_id", "recurrence", None, "starts_at"),
    ("update_document", _document, "document_id", "tags", [], "title"),
]


@pytest.mark.parametrize(("tool", "make", "id_arg", "field", "cleared", "required"), CLEARING, ids=[f"{c[0]}.{c[3]}" for c in CLEARING])
async def test_update_tools_clear_on_null_keep_omitted_and_refuse_clearing_required(
    running_app: RunningApp, tool: str, make: Any, id_arg: str, field: str, cleared: Any, required: str
) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        item = await make(tools)
        after = await tools.ok(tool, **{id_arg: item["id"], field: None})
        assert after[field] == cleared
        untouched = {k: v for k, v in item.items() if k not in (field, "updated_at", "overdue", "recurring", "exdates", "size_bytes", "sha256")}
        assert {k: after[k] for k in untouched} == untouched
        assert f"{required}: cannot be cleared" in await tools.error(tool, **{id_arg: item["id"], required: None})


async def test_whitespace_only_titles_are_refused(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert "title" in await tools.error("create_todo", title="   ")
        todo = await tools.ok("create_todo", title="ok")
        assert "title" in await tools.error("update_todo", todo_id=todo["id"], title="\t\n")


async def test_get_todo_and_event_and_update_document(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        todo = await tools.ok("create_todo", title="read")
        assert (await tools.ok("get_todo", todo_id=todo["id"]))["title"] == "read"
        event = await tools.ok("create_calendar_event", title="lunch", starts_at="2026-05-01T12:00:00+02:00")
        assert (await tools.ok("get_calendar_event", event_id=event["id"]))["starts_at"] == "2026-05-01T10:00:00+00:00"
        doc = await tools.ok("create_document", title="draft", content="old words")
        await tools.ok("update_document", document_id=doc["id"], content="neue Wörter", tags=["work"])
        got = await tools.ok("get_document", document_id=doc["id"])
        assert (got["content"], got["tags"], got["title"]) == ("neue Wörter", ["work"], "draft")
        link = await tools.ok("create_external_document", title="site", url="https://example.com")
        assert "only text documents" in await tools.error("update_document", document_id=link["id"], content="x")


# --- time zones -------------------------------------------------------------------------------------


async def test_preferences_set_the_zone_outputs_are_shown_in(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert (await tools.ok("get_preferences"))["timezone"] == "UTC"
        assert "not an IANA time zone" in await tools.error("update_preferences", timezone="Mars/Olympus")
        await tools.ok("update_preferences", timezone="America/New_York")
        assert (await tools.ok("whoami"))["timezone"] == "America/New_York"
        # 2026-03-08 is the US change: 09:00 EST before it, 09:00 EDT after it.
        before = await tools.ok("create_calendar_event", title="before", starts_at="2026-03-07T09:00:00")
        after = await tools.ok("create_calendar_event", title="after", starts_at="2026-03-09T09:00:00")
        offset = await tools.ok("create_calendar_event", title="exact", starts_at="2026-03-09T15:00:00+01:00")
    assert before["starts_at"] == "2026-03-07T09:00:00-05:00"
    assert after["starts_at"] == "2026-03-09T09:00:00-04:00"
    assert offset["starts_at"] == "2026-03-09T10:00:00-04:00"  # the same instant, shown in the caller's zone


async def test_list_windows_are_the_callers_local_days(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        await tools.ok("update_preferences", timezone="America/New_York")
        # 19:00-05:00 is 00:00 UTC the next day, but on the caller's 2026-03-02.
        await tools.ok("create_calendar_event", title="Dinner", starts_at="2026-03-02T19:00:00-05:00")
        day = await tools.ok("list_calendar_events", start="2026-03-02", end="2026-03-02")
        next_day = await tools.ok("list_calendar_events", start="2026-03-03", end="2026-03-03")
    assert [e["title"] for e in day["events"]] == ["Dinner"]
    assert next_day["events"] == []


async def test_a_date_makes_an_all_day_event_and_a_due_date_may_carry_a_time(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        await tools.ok("update_preferences", timezone="Europe/Berlin")
        holiday = await tools.ok("create_calendar_event", title="Ostern", starts_at="2026-03-29")  # the EU change day, 23 hours
        assert (holiday["all_day"], holiday["starts_at"], holiday["ends_at"]) == (True, "2026-03-29", "2026-03-29")
        listed = await tools.ok("list_calendar_events", start="2026-03-29", end="2026-03-29")
        assert [e["title"] for e in listed["events"]] == ["Ostern"]
        assert (await tools.ok("list_calendar_events", start="2026-03-30", end="2026-03-30"))["events"] == []
        todo = await tools.ok("create_todo", title="file taxes", due_date="2099-07-31T17:00:00")
        assert (todo["due_date"], todo["due_at"]) == ("2099-07-31", "2099-07-31T17:00:00+02:00")
        late = await tools.ok("create_todo", title="late", due_date="2020-01-01")
    assert late["overdue"] is True and todo["overdue"] is False


async def test_out_of_range_times_are_a_clear_error_naming_the_field(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert "starts_at" in await tools.error("create_calendar_event", title="x", starts_at="9999-12-31T23:59:59+14:00")
        assert "due_date" in await tools.error("create_todo", title="x", due_date="0001-01-01")


# --- recurrence ---------------------------------------------------------------------------------------


async def test_weekly_recurrence_keeps_wall_time_across_dst_and_exdate_removes_one(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        await tools.ok("update_preferences", timezone="Europe/Berlin")
        event = await tools.ok("create_calendar_event", title="Chor", starts_at="2026-03-16T19:00:00", recurrence="RRULE:FREQ=WEEKLY;COUNT=4")
        listed = await tools.ok("list_calendar_events", start="2026-03-01", end="2026-04-30")
        assert [e["starts_at"] for e in listed["events"]] == [
            "2026-03-16T19:00:00+01:00",
            "2026-03-23T19:00:00+01:00",
            "2026-03-30T19:00:00+02:00",
            "2026-04-06T19:00:00+02:00",
        ]
        gone = await tools.ok("delete_calendar_event", event_id=event["id"], occurrence="2026-03-30T19:00:00+02:00")
        assert gone["occurrence"] == "2026-03-30T19:00:00+02:00"
        assert "no occurrence" in await tools.error("delete_calendar_event", event_id=event["id"], occurrence="2026-03-31T19:00:00")
        left = await tools.ok("list_calendar_events", start="2026-03-01", end="2026-04-30")
    assert [e["starts_at"][:10] for e in left["events"]] == ["2026-03-16", "2026-03-23", "2026-04-06"]


async def test_a_bad_rule_is_refused_by_name(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert "recurrence" in await tools.error("create_calendar_event", title="x", starts_at="2026-05-01T09:00:00Z", recurrence="EVERY TUESDAY")
        assert "MINUTELY" in await tools.error("create_calendar_event", title="x", starts_at="2026-05-01T09:00:00Z", recurrence="FREQ=MINUTELY")


# --- iCalendar ------------------------------------------------------------------------------------------


async def test_ics_export_then_import_round_trips_and_import_is_idempotent(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        await tools.ok("update_preferences", timezone="America/New_York")
        weekly = await tools.ok("create_calendar_event", title="Café mit Müller", starts_at="2026-03-02T08:30:00", recurrence="FREQ=WEEKLY;COUNT=3",
                                location="Zürich", description="naïve façade ✓")
        await tools.ok("delete_calendar_event", event_id=weekly["id"], occurrence="2026-03-09T08:30:00")
        await tools.ok("create_calendar_event", title="Feiertag", starts_at="2026-07-03")
        exported = (await tools.ok("export_calendar"))["ics"]
        before = await tools.ok("list_calendar_events", start="2026-03-01", end="2026-07-31")
    assert "RRULE:FREQ=WEEKLY;COUNT=3" in exported and "DTSTART;VALUE=DATE:20260703" in exported and "Café mit Müller" in exported
    async with running_app.client(person(new_tenant())) as other:
        await other.ok("update_preferences", timezone="America/New_York")
        assert await other.ok("import_calendar", ics=exported) == {"created": 2, "updated": 0, "events": 2}
        assert (await other.ok("import_calendar", ics=exported))["updated"] == 2
        after = await other.ok("list_calendar_events", start="2026-03-01", end="2026-07-31")
    keep = ("title", "starts_at", "ends_at", "location", "description", "all_day", "recurrence")
    assert [{k: e[k] for k in keep} for e in after["events"]] == [{k: e[k] for k in keep} for e in before["events"]]
    assert len(after["events"]) == 3


HOSTILE = {
    "not ics": ("hello", "not valid iCalendar"),
    "no events": ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "no VEVENT"),
    "no uid": ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20260301T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "UID is missing"),
    "bad start": ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:2026xx\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "DTSTART is malformed"),
    "bad rule": (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260301T090000Z\r\nRRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "recurrence",
    ),
    "far future": ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:c\r\nDTSTART:99991231T235959Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "DTSTART is outside"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_a_broken_ics_is_a_clear_error_naming_what_is_wrong(running_app: RunningApp, case: str) -> None:
    text, expected = HOSTILE[case]
    async with running_app.client(person(new_tenant())) as tools:
        assert expected in await tools.error("import_calendar", ics=text)
        assert (await tools.ok("export_calendar"))["events"] == 0  # nothing half-imported


# --- search -----------------------------------------------------------------------------------------------


async def test_search_finds_every_kind_accent_insensitive_in_any_language(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        todo = await tools.ok("create_todo", title="Réserver le café", notes="pour l'été")
        project = await tools.ok("create_project", name="Umzug", description="Kisten für die Wohnung")
        task = await tools.ok("add_project_task", project_id=project["id"], title="Kühlschrank abtauen")
        event = await tools.ok("create_calendar_event", title="Termin", starts_at="2026-05-01T09:00:00Z", location="Praxis Dr. Müller")
        doc = await tools.ok("create_document", title="Notes", content="Lieber Herr Weiß, danke", tags=["privat", "Brief"])
        queries = ("cafe", "Muller", "Müller", "kuhlschrank", "wohnung", "weiss", "été", "brief")
        found = {q: {(r["kind"], r["id"]) for r in (await tools.ok("search", query=q))["results"]} for q in queries}
        tagged = await tools.ok("search", query="danke", tags=["privat"])
        untagged = await tools.ok("search", query="danke", tags=["work"])
        only_events = await tools.ok("search", query="muller", kinds=["todo"])
        snippet = (await tools.ok("search", query="Müller"))["results"][0]["snippet"]
    assert found["cafe"] == found["été"] == {("todo", todo["id"])}
    assert found["Muller"] == found["Müller"] == {("event", event["id"])}
    assert found["kuhlschrank"] == {("project_task", task["id"])}
    assert found["wohnung"] == {("project", project["id"])}
    assert found["weiss"] == found["brief"] == {("document", doc["id"])}
    assert [r["id"] for r in tagged["results"]] == [doc["id"]] and untagged["results"] == []
    assert only_events["results"] == []
    assert "Müller" in snippet


async def test_search_defaults_to_hybrid_when_semantic_search_is_on(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        for mode in ("semantic", "hybrid"):
            assert (await tools.ok("search", query="x", mode=mode))["mode"] == mode  # tests/app/test_semantic.py covers what they find
        assert (await tools.ok("search", query="x"))["mode"] == "hybrid"


async def test_dashboard_uses_the_callers_local_day(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        await tools.ok("update_preferences", timezone="Pacific/Kiritimati")  # UTC+14: usually already tomorrow
        board = await tools.ok("get_dashboard", days=1)
    now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=14)
    assert board["today"] == now.date().isoformat() and board["timezone"] == "Pacific/Kiritimati"
