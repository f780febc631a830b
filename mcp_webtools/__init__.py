"""mcp-webtools: serve configured HTTP web tools (Hamsa's FUNCTION tools) as MCP tools."""

__version__ = "0.1.0"
