"""Hamsa's side: registering this server as an MCP-type tool, importing tools exported from Hamsa, and
the `hamsa` sub-commands."""
