"""The MCP server and its transports: wiring tools/list and tools/call to the pipeline, Streamable HTTP
and legacy SSE, stdio, running with graceful shutdown, workers, hot reload and list_changed, tasks."""
