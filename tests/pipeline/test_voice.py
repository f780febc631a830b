"""Async tools and spoken messages: progress notifications while a call runs.

A client that sends a progress token hears, as `notifications/progress`: the tool's start message
before the upstream is called, its "delayed" message if the upstream is slow, heartbeats (no
message) every `progressIntervalSeconds` (2 s by default for async tools), and the complete or
failed message at the end, before the result. The upstreams here hold each request until the test
has seen what it is waiting for, so nothing depends on timing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import (
    ERAS,
    TRANSPORTS,
    HoldingUpstream,
    Recorded,
    Reply,
    Upstream,
    hamsa_tool,
    held_tools,
    mcp_client,
    text_of,
    write_tools,
)

from mcp_webtools.definitions import ToolDefinition
from mcp_webtools.toolset import Toolset
from mcp_webtools.voice import DEFAULT_ASYNC_PROGRESS_SECONDS, SpokenMessages, canonical_type

pytestmark = pytest.mark.anyio

BOUND = 30  # seconds: every wait is bounded, so a broken guarantee fails instead of hanging
START, DELAYED, COMPLETE, FAILED = "Opening a ticket", "Still working on it", "Your ticket is open", "It failed"
# The guide's spelling; the server normalises it to request-start, request-complete, ...
GUIDE_MESSAGES = {
    "Request Start": START,
    "Request Response Delayed": DELAYED,
    "Request Complete": COMPLETE,
    "Request Failed": FAILED,
}
TICKET_PARAMS = {"type": "object", "properties": {"subject": {"type": "string"}}, "required": ["subject"]}

Note = tuple[float, float | None, str | None]


class Heard:
    """The progress notifications of one call, with an event per thing a test waits for."""

    def __init__(self) -> None:
        self.notes: list[Note] = []
        self.start = anyio.Event()
        self.delayed = anyio.Event()
        self.heartbeat = anyio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.notes.append((progress, total, message))
        if message == START:
            self.start.set()
        elif message == DELAYED:
            self.delayed.set()
        elif message is None and self.delayed.is_set():
            self.heartbeat.set()

    @property
    def messages(self) -> list[str | None]:
        return [message for _, _, message in self.notes if message is not None]

    def assert_well_formed(self) -> None:
        """Progress counts 1, 2, 3, ...; only the last notification carries a total, equal to it."""
        assert [p for p, _, _ in self.notes] == [float(i) for i in range(1, len(self.notes) + 1)], self.notes
        assert [t for _, t, _ in self.notes[:-1]] == [None] * (len(self.notes) - 1), self.notes
        assert self.notes[-1][1] == self.notes[-1][0], self.notes


def ticket_tool(url: str, **settings: Any) -> dict:
    return {
        **hamsa_tool("Create Ticket", url, "POST", TICKET_PARAMS, timeOut=60, messages=GUIDE_MESSAGES),
        "retry": {"retries": 0},
        **settings,
    }


# -- the whole sequence, in both eras over stdio and Streamable HTTP ------------------------------


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_async_call_speaks_start_delayed_heartbeats_then_complete(
    upstream: Upstream, tmp_path: Path, transport: str, era: str
) -> None:
    heard = Heard()

    async def slow_answer(request: Recorded) -> Reply:
        # Held until the client has heard the start, the delayed message and a heartbeat after it.
        with anyio.fail_after(BOUND):
            await heard.start.wait()
            await heard.delayed.wait()
            await heard.heartbeat.wait()
        return Reply(201, b'{"ticket":7}', [("content-type", "application/json")])

    upstream.reply("POST", "/tickets", slow_answer)
    tool = ticket_tool(f"{upstream.url}/tickets", progressIntervalSeconds=0.05, delayedMessageSeconds=0.05)
    config = write_tools(tmp_path, [{**tool, "async": True}])
    async with mcp_client(transport, era, config) as client:
        with anyio.fail_after(BOUND):
            result = await client.call_tool("create_ticket", {"subject": "printer"}, progress_callback=heard)
    assert result.is_error is False and text_of(result) == '{"ticket":7}'
    assert [(r.method, r.raw_path, r.json()) for r in upstream.requests] == [
        ("POST", "/tickets", {"subject": "printer"})
    ]
    # Spoken in order, each once; the heartbeats between them carry no message.
    assert heard.messages == [START, DELAYED, COMPLETE], heard.notes
    assert heard.notes[0] == (1.0, None, START)
    assert heard.notes[-1][2] == COMPLETE
    assert None in [message for _, _, message in heard.notes]
    heard.assert_well_formed()


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_failed_call_speaks_the_failed_message_before_its_error(
    upstream: Upstream, tmp_path: Path, transport: str, era: str
) -> None:
    upstream.reply_json("POST", "/tickets", {"error": "down"}, status=503)
    # The upstream answers at once: a 600 s delay and interval never come due.
    tool = ticket_tool(f"{upstream.url}/tickets", progressIntervalSeconds=600, delayedMessageSeconds=600)
    config = write_tools(tmp_path, [{**tool, "async": True}])
    heard = Heard()
    async with mcp_client(transport, era, config) as client:
        with anyio.fail_after(BOUND):
            result = await client.call_tool("create_ticket", {"subject": "x"}, progress_callback=heard)
    assert result.is_error is True and "503" in text_of(result)
    assert heard.notes == [(1.0, None, START), (2.0, 2.0, FAILED)]


# -- other moments and settings, over in-process HTTP in the modern era ----------------------------


async def test_a_sync_tool_speaks_start_and_complete_only(upstream: Upstream, tmp_path: Path) -> None:
    upstream.reply_json("POST", "/tickets", {"ok": True})
    # Not async and no progressIntervalSeconds: no heartbeats; the delay never comes due.
    config = write_tools(tmp_path, [ticket_tool(f"{upstream.url}/tickets", delayedMessageSeconds=600)])
    heard = Heard()
    async with mcp_client("http", "auto", config) as client:
        result = await client.call_tool("create_ticket", {"subject": "x"}, progress_callback=heard)
    assert result.is_error is False
    assert heard.notes == [(1.0, None, START), (2.0, 2.0, COMPLETE)]


@pytest.mark.parametrize("era", ERAS)
async def test_a_timed_out_call_speaks_the_failed_message(upstream: Upstream, tmp_path: Path, era: str) -> None:
    never = anyio.Event()
    upstream.reply("POST", "/tickets", Reply(200, b"{}", wait=never))
    # The timeout is the point here: a tiny one, with nothing spoken but start and failed.
    tool = {**ticket_tool(f"{upstream.url}/tickets", delayedMessageSeconds=600), "async": True}
    tool["toolSettings"]["timeOut"] = 0.3
    config = write_tools(tmp_path, [{**tool, "progressIntervalSeconds": 600}])
    heard = Heard()
    try:
        async with mcp_client("http", era, config) as client:
            result = await client.call_tool("create_ticket", {"subject": "x"}, progress_callback=heard)
    finally:
        never.set()
    assert result.is_error is True and "timed out after 0.3 s" in text_of(result)
    assert heard.notes == [(1.0, None, START), (2.0, 2.0, FAILED)]


async def test_invalid_arguments_speak_nothing(upstream: Upstream, tmp_path: Path) -> None:
    config = write_tools(tmp_path, [{**ticket_tool(f"{upstream.url}/tickets"), "async": True}])
    heard = Heard()
    async with mcp_client("http", "auto", config) as client:
        result = await client.call_tool("create_ticket", {}, progress_callback=heard)
    assert result.is_error is True and upstream.requests == []
    assert heard.notes == []


async def test_without_a_progress_token_the_call_just_answers(upstream: Upstream, tmp_path: Path) -> None:
    upstream.reply_json("POST", "/tickets", {"ok": True})
    config = write_tools(tmp_path, [{**ticket_tool(f"{upstream.url}/tickets"), "async": True}])
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("create_ticket", {"subject": "x"})
    assert result.is_error is False and json.loads(text_of(result)) == {"ok": True}


@pytest.mark.parametrize("era", ERAS)
async def test_cancelling_an_async_call_closes_its_upstream_request(
    holding: tuple[HoldingUpstream, str], tmp_path: Path, era: str
) -> None:
    held, url = holding
    config = held_tools(tmp_path, url, "Gone")
    tools = json.loads(config.read_text())
    tools[0].update({"async": True, "progressIntervalSeconds": 0.05, "messages": GUIDE_MESSAGES})
    config.write_text(json.dumps(tools))
    heard = Heard()
    async with mcp_client("http", era, config) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: client.call_tool("gone", {}, progress_callback=heard))
            await held.arrived("/gone")
            with anyio.fail_after(BOUND):
                await heard.start.wait()
            tg.cancel_scope.cancel()
        assert await held.finished("/gone") == "disconnected"
    assert COMPLETE not in heard.messages and FAILED not in heard.messages


# -- the published messages and their vocabulary ---------------------------------------------------


async def test_messages_are_published_in_meta_with_normalised_types(upstream: Upstream, tmp_path: Path) -> None:
    messages = {**GUIDE_MESSAGES, "system": "You are helpful."}
    config = write_tools(tmp_path, [{**ticket_tool(f"{upstream.url}/t"), "messages": messages, "async": True}])
    async with mcp_client("http", "legacy", config) as client:
        (listed,) = (await client.list_tools()).tools
    assert listed.meta == {
        "mcp-webtools/tool": {
            "method": "POST",
            "async": True,
            "messages": [
                {"type": "request-start", "content": START},
                {"type": "request-response-delayed", "content": DELAYED},
                {"type": "request-complete", "content": COMPLETE},
                {"type": "request-failed", "content": FAILED},
                {"type": "system", "content": "You are helpful."},  # not spoken: kept as written
            ],
        }
    }


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("request-start", "request-start"),
        ("Request Start", "request-start"),
        ("request_complete", "request-complete"),
        ("REQUEST FAILED", "request-failed"),
        ("Request Response Delayed", "request-response-delayed"),
        ("Request Delayed", "request-response-delayed"),
        ("  request  start ", "request-start"),
        ("system", "system"),
        ("Request Started", "Request Started"),
    ],
)
def test_canonical_type(written: str, canonical: str) -> None:
    assert canonical_type(written) == canonical


def test_the_first_message_of_a_type_wins_and_unknown_types_are_not_spoken() -> None:
    spoken = SpokenMessages.from_pairs([("Request Start", "a"), ("request-start", "b"), ("system", "c")])
    assert spoken == SpokenMessages(start="a")


def definition(**values: Any) -> ToolDefinition:
    base = {"name": "T", "mcp_name": "t", "method": "GET", "url": "https://api.example.com/t", "params": {}}
    return ToolDefinition.model_validate({**base, "params": {"type": "object"}, **values})


@pytest.mark.parametrize(
    ("values", "interval", "delayed_after"),
    [
        ({}, None, 5.0),
        ({"is_async": True}, DEFAULT_ASYNC_PROGRESS_SECONDS, 5.0),
        ({"is_async": True, "progress_interval_seconds": 7}, 7.0, 5.0),
        ({"progress_interval_seconds": 3.5, "delayed_message_seconds": 1}, 3.5, 1.0),
    ],
)
async def test_progress_settings_and_defaults(values: dict, interval: float | None, delayed_after: float) -> None:
    (tool,) = Toolset.from_definitions([definition(**values)])
    progress = tool.progress(None)
    assert (progress.interval, progress.delayed_after) == (interval, delayed_after)
