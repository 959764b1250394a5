"""Out-of-range dates (issue 12, finding 9): a clear tool error naming the field, never "internal error".

`starts_at 9999-12-31T23:59:59+14:00` used to end in an OverflowError (UTC is past year 9999).
Every date argument of every tool is tried with far-future and far-past values, with and
without a time and an extreme offset.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.app.conftest import ADMIN, RunningApp, new_tenant, person

FAR_VALUES = ("9999-12-31T23:59:59+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00-14:00", "9999-12-31", "0001-01-01")
EVENT = {"title": "bounds", "starts_at": "2026-06-01T10:00:00Z"}

# tool, the other arguments it needs, the date argument under test
DATE_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("create_calendar_event", {"title": "bounds"}, "starts_at"),
    ("create_calendar_event", EVENT, "ends_at"),
    ("list_calendar_events", {}, "start"),
    ("list_calendar_events", {}, "end"),
    ("create_todo", {"title": "bounds"}, "due_date"),
    ("list_todos", {}, "due_before"),
    ("create_project", {"name": "bounds"}, "due_date"),
    ("list_audit_events", {}, "since"),
]


@pytest.mark.parametrize("value", FAR_VALUES)
@pytest.mark.parametrize(("tool", "others", "field"), DATE_ARGUMENTS, ids=[f"{t}-{f}" for t, _, f in DATE_ARGUMENTS])
async def test_rule_out_of_range_dates_are_a_tool_error_naming_the_field(
    running_app: RunningApp, tool: str, others: dict[str, Any], field: str, value: str
) -> None:
    async with running_app.client(person(new_tenant(), permissions=ADMIN)) as tools:
        result = await tools.client.call_tool(tool, {**others, field: value})
    text = result.content[0].text if result.content else ""
    if not result.is_error:
        pytest.fail(f"{tool}({field}={value!r}) was accepted: {result.structured_content}")
    assert "internal error" not in text.lower(), text
    assert field in text, text
