"""Shared by the deploy tests: an MCP client through Envoy with TLS, and process bookkeeping."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import httpx2
import psutil
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_pa.core import contract


async def list_tool_names(mcp_url: str, api_key: str, ca: Path | None) -> set[str]:
    """tools/list through the real front door with the official MCP client, trusting only `ca`."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True
    async with (
        httpx2.AsyncClient(headers={contract.HEADER_API_KEY: api_key}, verify=verify, timeout=30) as http,
        Client(streamable_http_client(mcp_url, http_client=http), cache=None) as client,
    ):
        result = await client.list_tools()
    return {tool.name for tool in result.tools}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any MCP_HTTP_* a developer may have exported, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_HTTP_")}
    env.update(extra)
    return env


def alive_processes(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes in `processes` that still run (zombies count as gone)."""
    left = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


def alive(processes: list[psutil.Process]) -> list[str]:
    """Descriptions of the processes that still run, for assertion messages."""
    return [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in alive_processes(processes)]

