"""mcp-pa: the shared contract, settings and command line of the multi-tenant MCP server."""

__version__ = "0.1.0"
