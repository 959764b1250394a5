"""What tools return, as JSON schemas for `outputSchema`: one shape per kind of item, and the few special results.

A tool whose return annotation is a TypedDict or pydantic model publishes that (the registry
prefers it). Otherwise the registry derives the shape from the tool's name: `list_<kinds>` →
`{<last word of kinds>: [item], next_cursor}`, `delete_<kind>` → `{deleted}`, any other `<verb>_<kind>` →
the item; `SPECIAL` names the tools that fit no such rule. Shapes list the fields clients rely
on and allow more (a new column is not a breaking change), so they describe without freezing.
"""

from __future__ import annotations

from typing import Any

JsonSchema = dict[str, Any]

_STRING: JsonSchema = {"type": "string"}
_TEXT_OR_NULL: JsonSchema = {"type": ["string", "null"]}
_TIME: JsonSchema = {"type": ["string", "null"], "description": "ISO 8601 date or date-time"}
_ID: JsonSchema = {"type": "string", "description": "The item's id (a UUID)"}
_COUNT: JsonSchema = {"type": "integer", "minimum": 0}


def item(description: str, properties: dict[str, JsonSchema], required: tuple[str, ...] = ("id",)) -> JsonSchema:
    """An object with the named fields (required ones first); further fields are allowed."""
    return {"type": "object", "description": description, "properties": properties, "required": list(required), "additionalProperties": True}


TODO = item("A todo", {"id": _ID, "title": _STRING, "notes": _STRING, "priority": _STRING, "status": _STRING,
                       "due_date": _TIME, "project_id": _TEXT_OR_NULL, "completed_at": _TIME, "created_at": _TIME, "updated_at": _TIME})
TASK = item("A task of a project", {"id": _ID, "project_id": _ID, "title": _STRING, "done": {"type": "boolean"}, "due_date": _TIME})
PROJECT = item("A project", {"id": _ID, "name": _STRING, "description": _STRING, "status": _STRING, "due_date": _TIME,
                             "task_count": _COUNT, "tasks_done": _COUNT, "tasks": {"type": "array", "items": TASK},
                             "todos": {"type": "array", "items": TODO}, "created_at": _TIME, "updated_at": _TIME})
EVENT = item("A calendar event (or one occurrence of a recurring one)", {"id": _ID, "title": _STRING, "starts_at": _TIME, "ends_at": _TIME,
                                                                          "location": _STRING, "description": _STRING})
DOCUMENT = item("A document: a text, an uploaded file or a link", {"id": _ID, "kind": _STRING, "title": _STRING, "content_type": _STRING,
                                                                   "size_bytes": _COUNT, "url": _TEXT_OR_NULL, "tags": {"type": "array", "items": _STRING},
                                                                   "content": _STRING, "data_base64": _STRING, "created_at": _TIME})
STATUS = item("Your status, mood and focus", {"status": _STRING, "mood": _TEXT_OR_NULL, "focus": _TEXT_OR_NULL, "note": _TEXT_OR_NULL,
                                              "updated_at": _TIME}, required=("status",))
AUDIT_EVENT = item("One audited tool call", {"id": {"type": "integer"}, "at": _TIME, "user_id": _STRING, "tool": _STRING,
                                             "target_id": _TEXT_OR_NULL, "outcome": _STRING, "request_id": _TEXT_OR_NULL, "detail": _STRING})
PREFERENCES = item("Your preferences", {"timezone": {"type": "string", "description": "IANA time zone name"}}, required=())
DELETED = item("What was deleted", {"deleted": _ID}, required=("deleted",))
SEARCH_RESULT = item("One match: its kind, id and a snippet", {"kind": _STRING, "id": _ID, "title": _STRING, "snippet": _STRING,
                                                               "rank": {"type": "number"}}, required=("id",))

# The noun in a tool's name → the item it is about (singular; `list_<noun>s` pages them).
KINDS: dict[str, JsonSchema] = {
    "todo": TODO,
    "project": PROJECT,
    "project_task": TASK,
    "calendar_event": EVENT,
    "document": DOCUMENT,
    "external_document": DOCUMENT,
    "status": STATUS,
    "preferences": PREFERENCES,
    "audit_event": AUDIT_EVENT,
}


def page(key: str, of: JsonSchema) -> JsonSchema:
    """One page of a list: the items under `key` and the cursor of the next page (null at the end)."""
    return item(f"A page of {key}", {key: {"type": "array", "items": of},
                                      "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null at the end"}},
                required=(key,))


SPECIAL: dict[str, JsonSchema] = {
    "whoami": item("Who you are signed in as", {"user_id": _STRING, "tenant_id": _STRING, "permissions": {"type": "array", "items": _STRING},
                                                "provider": _STRING, "email": _TEXT_OR_NULL, "name": _TEXT_OR_NULL, "timezone": _STRING},
                   required=("user_id", "tenant_id", "permissions")),
    "get_dashboard": item("Your day at a glance", {"status": STATUS, "active_projects": {"type": "array", "items": PROJECT},
                                                   "todos_due": {"type": "array", "items": TODO}, "upcoming_events": {"type": "array", "items": EVENT},
                                                   "newest_documents": {"type": "array", "items": DOCUMENT}}, required=()),
    "search": page("results", SEARCH_RESULT),
    "search_documents": page("results", SEARCH_RESULT),
    "export_calendar": item("Your calendar as iCalendar text", {"ics": _STRING}, required=()),
    "import_calendar": item("What an import did", {"created": _COUNT, "updated": _COUNT}, required=()),
}


def derived(tool_name: str) -> JsonSchema | None:
    """The result shape a tool's name implies, or None when nothing fits (the registry then says so)."""
    if tool_name in SPECIAL:
        return SPECIAL[tool_name]
    verb, _, noun = tool_name.partition("_")
    if verb == "list" and noun.endswith("s") and noun[:-1] in KINDS:
        # The items sit under the noun's last word: list_calendar_events → "events".
        return page(noun.rpartition("_")[2], KINDS[noun[:-1]])
    if verb == "delete" and noun in KINDS:
        return DELETED
    return KINDS.get(noun)
