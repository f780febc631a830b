"""The server's own secrets (the inbound HTTP token) and echoes of client input stay hidden."""

from __future__ import annotations

import logging

import pytest
from mcp.shared.exceptions import MCPError
from support import hamsa_tool, mcp_client, write_tools

from mcp_webtools.serving import runtime
from mcp_webtools.serving.http_app import HttpSettings

pytestmark = pytest.mark.anyio

INBOUND = "inbound-token-never-shown-7781"
TOOL_SECRET = "sk_live_tool_secret_never-shown-55"


def test_the_inbound_token_is_hidden_in_logs_and_reprs(caplog: pytest.LogCaptureFixture) -> None:
    log_filter = runtime.configure_logging()  # as `serve` sets logging up, then hides its own token
    log_filter.hide(INBOUND)
    assert log_filter in logging.getLogger().handlers[0].filters
    record = logging.LogRecord("mcp_webtools", logging.INFO, __file__, 1, "token=%s", (INBOUND,), None)
    assert log_filter.filter(record) and record.getMessage() == "token=***"
    assert INBOUND not in repr(HttpSettings(auth_token=INBOUND))


async def test_an_unknown_tool_name_is_not_echoed_with_secrets(upstream, tmp_path) -> None:
    config = write_tools(tmp_path, hamsa_tool("Known", f"{upstream.url}/k", authToken=TOOL_SECRET))
    async with mcp_client("http", "legacy", config) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool(f"nope-{TOOL_SECRET}", {})
    assert str(caught.value) == "Unknown tool: nope-***"
    assert upstream.requests == []
