"""Bad input gets a clear refusal: identity, tenant ids, permissions, uploads, links, arguments."""

from __future__ import annotations

import base64
import uuid

import httpx2
import pytest

from mcp_app.db import Database, schema_for
from mcp_app.tools.documents import MAX_UPLOAD_BYTES
from mcp_pa.core import contract
from tests.app.conftest import READ_ONLY, RunningApp, new_tenant, person

BAD_TENANT_IDS = [
    'acme"; DROP SCHEMA public CASCADE; --',
    "acme'",
    "public",
    "pg_catalog",
    "pg_toast",
    "information_schema",
    "Acme",
    "a" * 64,
    "",
    "1acme",
    "acme-corp",
]


@pytest.mark.parametrize("tenant_id", BAD_TENANT_IDS)
async def test_bad_tenant_id_is_refused_before_any_sql(tenant_id: str) -> None:
    with pytest.raises(ValueError, match="invalid tenant id"):
        schema_for(tenant_id)
    # A database that was never started fails with RuntimeError on first use; ValueError proves
    # the id was refused before anything reached a connection.
    never_started = Database("postgresql://unused.invalid/none")
    identity = contract.Identity("apikey:x", tenant_id, frozenset({"read"}), "apikey")
    with pytest.raises(ValueError, match="invalid tenant id"):
        async with never_started.transaction(identity):
            pass


@pytest.mark.parametrize("tenant_id", ["public", "pg_catalog", "Acme", "a" * 64, "acme'"])
async def test_bad_tenant_header_is_rejected_with_401(running_app: RunningApp, tenant_id: str) -> None:
    headers = {**person("acme").to_headers(), contract.HEADER_TENANT_ID: tenant_id}
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{running_app.url}/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert "tenant id" in response.json()["error_description"]


@pytest.mark.parametrize(
    "drop, extra",
    [
        (contract.HEADER_USER_ID, {}),
        (contract.HEADER_TENANT_ID, {}),
        (contract.HEADER_PERMISSIONS, {}),
        (contract.HEADER_PROVIDER, {}),
        (None, {contract.HEADER_PERMISSIONS: "read,root"}),
    ],
)
async def test_missing_or_malformed_identity_headers_are_rejected_with_401(
    running_app: RunningApp, drop: str | None, extra: dict[str, str]
) -> None:
    headers = {**person(new_tenant()).to_headers(), **extra}
    headers.pop(drop or "", None)
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{running_app.url}/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "unauthorized" and body["error_description"]


async def test_read_only_caller_cannot_write_and_is_told_which_permission_is_missing(running_app: RunningApp) -> None:
    tenant = new_tenant()
    async with running_app.client(person(tenant, "writer")) as writer:
        todo = await writer.ok("create_todo", title="keep me")
    async with running_app.client(person(tenant, "reader", READ_ONLY)) as reader:
        assert (await reader.ok("list_todos"))["todos"] == []
        for tool, arguments in [
            ("create_todo", {"title": "nope"}),
            ("delete_todo", {"todo_id": todo["id"]}),
            ("update_status", {"status": "busy"}),
            ("upload_document", {"title": "x", "content_type": "text/plain", "data_base64": "eA=="}),
            ("list_audit_events", {}),
        ]:
            message = await reader.error(tool, **arguments)
            needed = contract.TOOL_PERMISSIONS[tool]
            assert f"needs the '{needed}' permission" in message and "you have: read" in message
    async with running_app.client(person(tenant, "writer")) as writer:
        assert [t["id"] for t in (await writer.ok("list_todos"))["todos"]] == [todo["id"]]


async def test_caller_without_read_cannot_read_resources(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant(), permissions=frozenset({"write"}))) as tools:
        assert "needs the 'read' permission" in await tools.error("list_todos")
        with pytest.raises(Exception, match="needs the 'read' permission"):
            await tools.client.read_resource("pa://todos")


async def test_oversize_upload_is_refused_with_the_limit_named(running_app: RunningApp) -> None:
    too_big = base64.b64encode(b"\0" * (MAX_UPLOAD_BYTES + 1)).decode()
    async with running_app.client(person(new_tenant())) as tools:
        message = await tools.error("upload_document", title="big", content_type="application/pdf", data_base64=too_big)
        assert "upload too large" in message and "limit is 5 MB" in message
        just_fits = base64.b64encode(b"%PDF" + b"\0" * (MAX_UPLOAD_BYTES - 4)).decode()
        stored = await tools.ok("upload_document", title="fits", content_type="application/pdf", data_base64=just_fits)
        assert stored["size_bytes"] == MAX_UPLOAD_BYTES


@pytest.mark.parametrize(
    "content_type, data, expected",
    [
        ("text/html", "PGI+aGk8L2I+", "content type 'text/html' is not allowed"),
        ("application/x-sh", "ZWNobw==", "is not allowed"),
        ("text/plain", "not base64!!", "not valid base64"),
        ("text/plain", "", "upload is empty"),
    ],
)
async def test_bad_uploads_are_refused_clearly(running_app: RunningApp, content_type: str, data: str, expected: str) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert expected in await tools.error("upload_document", title="x", content_type=content_type, data_base64=data)
        assert (await tools.ok("list_documents"))["documents"] == []


@pytest.mark.parametrize(
    "url, expected",
    [
        ("javascript:alert(document.cookie)", "only http and https links are allowed; got scheme 'javascript'"),
        ("JavaScript:alert(1)", "got scheme 'javascript'"),
        ("data:text/html;base64,PHNjcmlwdD4=", "got scheme 'data'"),
        ("file:///etc/passwd", "got scheme 'file'"),
        ("//example.com/x", "got scheme '(none)'"),
        ("https://", "url has no host"),
        ("https://exa mple.com", "spaces or control characters"),
        ("java\tscript:alert(1)", "spaces or control characters"),
    ],
)
async def test_unsafe_links_are_refused(running_app: RunningApp, url: str, expected: str) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert expected in await tools.error("create_external_document", title="x", url=url)


async def test_malformed_arguments_are_tool_errors_not_server_errors(running_app: RunningApp) -> None:
    async with running_app.client(person(new_tenant())) as tools:
        assert "todo_id" in await tools.error("complete_todo", todo_id="42; DROP TABLE todos")
        assert "title" in await tools.error("create_todo", title="x" * 201)
        assert "title" in await tools.error("create_todo")
        assert "starts_at" in await tools.error("create_calendar_event", title="x", starts_at="tomorrow-ish")
        assert "limit" in await tools.error("list_todos", limit=100000)
        assert "not found" in await tools.error("get_document", document_id=str(uuid.uuid4()))


async def test_upload_far_over_the_limit_is_refused_before_decoding(running_app: RunningApp) -> None:
    huge = "A" * (MAX_UPLOAD_BYTES * 4 // 3 + 4096)  # still under the transport's body limit
    async with running_app.client(person(new_tenant())) as tools:
        assert "upload too large" in await tools.error("upload_document", title="x", content_type="text/plain", data_base64=huge)
