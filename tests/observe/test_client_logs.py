"""MCP log notifications: a call's spoken messages as `notifications/message`, for clients that ask.

Handshake-era clients ask with `logging/setLevel` (the server filters: `info` entries go out at a
level of `info` or lower); 2026-07-28 clients ask per request with the `logLevel` `_meta` key. A
client that did not ask hears no log entries. Entries for a call ride the same ordered stream as
its result and come before it, so once a later call has been answered with entries, an earlier
call that sent none really sent none.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import mcp_types as types
import pytest
from support import ERAS, TRANSPORTS, Upstream, hamsa_tool, mcp_client, write_tools

# Logging is deprecated in 2026-07-28 (SEP-2577); these tests use it on purpose.
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]

BOUND = 30
START, COMPLETE, FAILED = "Looking that up", "Found it", "The lookup failed"
MESSAGES = {"Request Start": START, "Request Complete": COMPLETE, "Request Failed": FAILED}
TOOL = "look_up"


class Logs:
    """The log entries a client heard, as (level, logger, data)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str | None, object]] = []

    async def __call__(self, params: types.LoggingMessageNotificationParams) -> None:
        self.entries.append((params.level, params.logger, params.data))

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(BOUND):
            while len(self.entries) < count:
                await anyio.sleep(0.01)  # polling an observable condition, bounded by BOUND


def config_for(upstream: Upstream, tmp_path: Path) -> Path:
    upstream.reply_json("GET", "/things", {"thing": 1})
    upstream.reply_json("GET", "/broken", {"error": "down"}, status=503)
    tools = [
        hamsa_tool("Look Up", f"{upstream.url}/things", messages=MESSAGES),
        {**hamsa_tool("Broken", f"{upstream.url}/broken", messages=MESSAGES), "retry": {"retries": 0}},
    ]
    return write_tools(tmp_path, tools)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_handshake_era_hears_spoken_messages_once_it_sets_a_level(
    upstream: Upstream, tmp_path: Path, transport: str
) -> None:
    logs = Logs()
    async with mcp_client(transport, "legacy", config_for(upstream, tmp_path), logging_callback=logs) as client:
        assert client.server_capabilities.logging is not None
        with anyio.fail_after(BOUND):
            # No level set, then one above info: the calls answer, with no log entries.
            assert (await client.call_tool(TOOL, {})).is_error is False
            assert await client.set_logging_level("warning") == types.EmptyResult()
            assert (await client.call_tool(TOOL, {})).is_error is False
            # info or lower: this call's spoken messages, in order, named for the tool.
            await client.set_logging_level("debug")
            assert (await client.call_tool(TOOL, {})).is_error is False
            await logs.wait_for(2)
            failed = await client.call_tool("broken", {})
            await logs.wait_for(4)
    assert failed.is_error is True
    assert logs.entries == [
        ("info", TOOL, START),
        ("info", TOOL, COMPLETE),
        ("info", "broken", START),
        ("info", "broken", FAILED),
    ]
    assert len(upstream.requests) == 4


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_2026_era_hears_them_on_requests_that_opt_in(upstream: Upstream, tmp_path: Path, transport: str) -> None:
    logs = Logs()
    config = config_for(upstream, tmp_path)
    async with mcp_client(transport, "auto", config, logging_callback=logs, log_level="notice") as client:
        with anyio.fail_after(BOUND):
            # The client-wide opt-in is above info: nothing.
            assert (await client.call_tool(TOOL, {})).is_error is False
            # This request opts in at info.
            result = await client.call_tool(TOOL, {}, meta={types.LOG_LEVEL_META_KEY: "info"})
            await logs.wait_for(2)
    assert result.is_error is False
    assert logs.entries == [("info", TOOL, START), ("info", TOOL, COMPLETE)]


@pytest.mark.parametrize("era", ERAS)
async def test_progress_is_unchanged_when_logs_go_out_too(upstream: Upstream, tmp_path: Path, era: str) -> None:
    logs = Logs()
    heard: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        heard.append((value, total, message))

    config = config_for(upstream, tmp_path)
    async with mcp_client("http", era, config, logging_callback=logs, log_level="info") as client:
        with anyio.fail_after(BOUND):
            if era == "legacy":
                await client.set_logging_level("info")
            result = await client.call_tool(TOOL, {}, progress_callback=progress)
            await logs.wait_for(2)
    assert result.is_error is False
    assert heard == [(1.0, None, START), (2.0, 2.0, COMPLETE)]
    assert logs.entries == [("info", TOOL, START), ("info", TOOL, COMPLETE)]
