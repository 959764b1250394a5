"""Every tool by domain, checked against the contract's permission table and described for clients.

Adding a tool: write one typed async function in `tools/<domain>.py` (its docstring is the
tool's description), add it to that module's `TOOLS`, and give it a permission in
`mcp_pa.core.contract`; a tool without a permission, or a permission without a tool, stops
the app at start instead of surfacing as a call that nobody can make (or anybody can).

What clients see is derived here, once for every tool: a title from the name; annotations from
the permission and the verb (`get_`/`list_` read only, `delete_` destructive, …; never open
world); an input schema that refuses arguments the function does not take; an output schema
from the return annotation or `results`; results as structuredContent plus compact JSON text.
`base.hints(...)` on a function overrides any derived value.
"""

from __future__ import annotations

import inspect
import json
import typing
from typing import Annotated, Any, Awaitable, Callable, Sequence, is_typeddict

from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from mcp_app.tools import audit, calendar, dashboard, documents, preferences, projects, results, search, status, todos, whoami
from mcp_app.tools.base import ToolFailure, hints_of
from mcp_pa.core import contract

ToolFunction = Callable[..., Awaitable[Any]]

DOMAINS = (whoami, status, preferences, projects, todos, calendar, documents, search, dashboard, audit)
ALL_TOOLS: tuple[ToolFunction, ...] = tuple(tool for domain in DOMAINS for tool in domain.TOOLS)

# A tool name's first word → (destructive, idempotent) for tools that change something. A verb
# not listed is taken as destructive and not idempotent, the spec's safe default.
READ_VERBS = frozenset({"get", "list", "search", "export", "whoami"})
WRITE_VERBS: dict[str, tuple[bool, bool]] = {
    "create": (False, False),
    "add": (False, False),
    "upload": (False, False),
    "complete": (False, True),  # done twice is done once
    "update": (True, True),  # overwrites what was there
    "import": (True, True),  # by UID: a second import changes nothing more
    "delete": (True, True),
}
TITLE_WORDS = {"whoami": "Who am I"}


class ToolRegistryError(RuntimeError):
    """The tool functions disagree with `contract.TOOL_PERMISSIONS` (raised at start, never per call)."""


def check_against_contract(tools: Sequence[ToolFunction]) -> None:
    """Every tool has exactly one function, a description and a permission; ToolRegistryError naming each gap."""
    names = [tool.__name__ for tool in tools]
    problems: list[str] = []
    unknown = sorted(set(names) - set(contract.TOOL_PERMISSIONS))
    if unknown:
        problems.append(f"no permission in mcp_pa.core.contract for {', '.join(unknown)} (add each to READ_TOOLS, WRITE_TOOLS or ADMIN_TOOLS)")
    missing = sorted(set(contract.TOOL_PERMISSIONS) - set(names))
    if missing:
        problems.append(f"no function for contract tool(s) {', '.join(missing)} (add each to its domain's TOOLS list)")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f"registered more than once: {', '.join(duplicates)}")
    undescribed = sorted(tool.__name__ for tool in tools if not (tool.__doc__ or "").strip())
    if undescribed:
        problems.append(f"no docstring (the tool's description) on {', '.join(undescribed)}")
    if problems:
        raise ToolRegistryError("the tools do not match the contract: " + "; ".join(problems))


def title_for(tool: ToolFunction) -> str:
    """The human-readable name: the override, or the tool name in words ("List calendar events")."""
    given = hints_of(tool).title
    if given:
        return given
    words = [TITLE_WORDS.get(word, word) for word in tool.__name__.split("_")]
    text = " ".join(words)
    return text[0].upper() + text[1:]


def annotations_for(tool: ToolFunction) -> ToolAnnotations:
    """The behaviour hints clients use to decide what needs a confirmation."""
    name = tool.__name__
    verb = name.partition("_")[0]
    overrides = hints_of(tool)
    read_only = contract.TOOL_PERMISSIONS.get(name) == contract.PERMISSION_READ or verb in READ_VERBS
    destructive, idempotent = (False, True) if read_only else WRITE_VERBS.get(verb, (True, False))
    return ToolAnnotations(
        title=title_for(tool),
        read_only_hint=read_only if overrides.read_only is None else overrides.read_only,
        destructive_hint=destructive if overrides.destructive is None else overrides.destructive,
        idempotent_hint=idempotent if overrides.idempotent is None else overrides.idempotent,
        open_world_hint=False,  # every tool works on the caller's own rows, nothing outside
    )


def _declared_result(tool: ToolFunction) -> Any | None:
    """The return annotation when it describes fields (a TypedDict or a pydantic model), else None."""
    returned = typing.get_type_hints(tool).get("return")
    if is_typeddict(returned) or (isinstance(returned, type) and issubclass(returned, BaseModel)):
        return returned
    return None


def output_schema_for(tool: ToolFunction) -> dict[str, Any] | None:
    """The published shape of a result when the return annotation does not give one: override, else by name."""
    return hints_of(tool).output_schema or results.derived(tool.__name__)


def render(result: Any) -> str:
    """The text twin of structuredContent: one line of JSON, for clients that read only text."""
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"), default=str)


def _as_result(tool: ToolFunction, model: Any | None) -> Callable[..., Awaitable[CallToolResult]]:
    """The tool, answering structuredContent plus its compact text (the SDK would pretty-print it)."""

    async def call(**arguments: Any) -> CallToolResult:
        value = await tool(**arguments)
        structured = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        return CallToolResult(content=[TextContent(type="text", text=render(structured))], structured_content=structured)

    signature = inspect.signature(tool, eval_str=True)
    # Annotated[CallToolResult, Model] makes the SDK publish and check Model; bare, it checks nothing.
    returns = Annotated[CallToolResult, model] if model is not None else CallToolResult
    call.__signature__ = signature.replace(return_annotation=returns)  # type: ignore[attr-defined]
    call.__name__ = tool.__name__
    call.__doc__ = tool.__doc__
    return call


class StrictTool(Tool):
    """An SDK tool that refuses arguments it does not define and says what is wrong in plain words."""

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        try:
            return await super().run(arguments, context, convert_result)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolFailure(plain_errors(self.name, exc.__cause__, self.parameters)) from exc.__cause__
            raise


def plain_errors(tool: str, error: ValidationError, schema: dict[str, Any]) -> str:
    """One line per argument, in words (no library URLs, no echo of the values sent)."""
    accepted = ", ".join(schema.get("properties", {})) or "no arguments"
    by_field: dict[str, list[str]] = {}
    for problem in error.errors(include_url=False, include_input=False):
        field = str(problem["loc"][0]) if problem["loc"] else "arguments"
        if problem["type"] == "extra_forbidden":
            message = f"not an argument of {tool} (it takes: {accepted})"
        elif problem["type"] == "missing":
            message = "required"
        else:
            message = str(problem["msg"])
        if message not in by_field.setdefault(field, []):
            by_field[field].append(message)
    lines = [f"{field}: {'; '.join(messages)}" for field, messages in by_field.items()]
    return f"invalid arguments for {tool}:\n" + "\n".join(lines)


def _strict(tool: Tool) -> None:
    """Make the argument model forbid unknown names, and publish `additionalProperties: false`."""
    loose = tool.fn_metadata.arg_model
    config = ConfigDict(**{**loose.model_config, "extra": "forbid"})
    strict: type[ArgModelBase] = type(loose.__name__, (loose,), {"model_config": config, "__module__": loose.__module__})
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)


def build_tool(function: ToolFunction) -> Tool:
    """One registered tool: strict inputs, title, annotations, output schema, compact results."""
    model = _declared_result(function)
    tool = StrictTool.from_function(
        _as_result(function, model),
        name=function.__name__,
        title=title_for(function),
        description=inspect.cleandoc(function.__doc__ or ""),
        annotations=annotations_for(function),
    )
    if model is None:
        # Published without a validating model: the shape describes, the tests check it holds.
        tool.fn_metadata.output_schema = output_schema_for(function)
    _strict(tool)
    return tool


def build_tools(tools: Sequence[ToolFunction] = ALL_TOOLS) -> list[Tool]:
    """Every tool, ready for MCPServer(tools=...); ToolRegistryError when they disagree with the contract."""
    check_against_contract(tools)
    return [build_tool(tool) for tool in tools]
