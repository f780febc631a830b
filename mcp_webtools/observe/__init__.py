"""What happened: one record per call turned into the audit log, metrics and spans; log formats;
MCP log notifications for clients that ask."""
