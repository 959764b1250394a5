"""The app's prompts: a daily briefing, a weekly review, planning a project.

Each renders one user message that tells the model which tools to call and what to make of
them; nothing is read here, so a prompt needs no permission and touches no data.
"""

from __future__ import annotations

from typing import Annotated, Callable

from mcp.server.mcpserver import MCPServer
from pydantic import Field

ARGUMENT_MAX_CHARS = 500

Day = Annotated[str, Field(max_length=40, description="ISO 8601 date, e.g. 2026-03-09; empty for today in your time zone")]
Text = Annotated[str, Field(min_length=1, max_length=ARGUMENT_MAX_CHARS)]


def daily_briefing(day: Day = "") -> str:
    """Your day at a glance: status, events in order, todos due or overdue, what to do first."""
    when = f"for {day}" if day.strip() else "for today"
    return (
        f"Give me my daily briefing {when}. Call get_dashboard with days=1 (and list_calendar_events for that day if it "
        "is not today). Then tell me, briefly: my status; the day's events in time order with their times in my time zone; "
        "todos that are overdue or due that day, most urgent first; active projects with a task due. End with the three "
        "things I should do first, and ask before changing anything."
    )


def weekly_review(week_start: Day = "") -> str:
    """Look back on a week and plan the next: what got done, what slipped, what comes."""
    week = f"the week starting {week_start}" if week_start.strip() else "the past seven days"
    return (
        f"Run my weekly review for {week}. Use list_todos (include_done=true), list_calendar_events for that week and the "
        "next, and list_projects with get_project for the active ones; page with next_cursor until it is null. Summarise: "
        "what I completed, what is overdue or slipped, each active project's progress, and next week's commitments. "
        "Suggest which todos to reschedule or drop, and ask before changing anything."
    )


def plan_project(goal: Text, deadline: Day = "") -> str:
    """Turn a goal into a project with dated tasks, after you agree to the plan."""
    by = f" by {deadline}" if deadline.strip() else ""
    return (
        f"Help me plan a project: {goal}{by}. Propose a name, a one-paragraph description and five to ten concrete tasks "
        "in order, each with a due date that fits the deadline and my calendar (check list_calendar_events). Show me the "
        "plan and wait for my go-ahead; then create it with create_project and add_project_task for each task, and tell "
        "me the project id."
    )


PROMPTS: tuple[Callable[..., str], ...] = (daily_briefing, weekly_review, plan_project)
TITLES = {"daily_briefing": "Daily briefing", "weekly_review": "Weekly review", "plan_project": "Plan a project"}


def register_prompts(server: MCPServer) -> None:
    """Add every prompt, titled, described by its docstring."""
    for prompt in PROMPTS:
        server.prompt(name=prompt.__name__, title=TITLES[prompt.__name__], description=prompt.__doc__)(prompt)
