"""A tool call on its own (calls.py): `ToolCalls` without any MCP wiring, the `CallOutcome` each
call ends in, the one outcome vocabulary, and the per-tool work done once at load."""

from __future__ import annotations

import anyio
import pytest
from support import Reply, hamsa_tool, write_tools

from mcp_webtools.calls import PreparedCall, ToolCalls
from mcp_webtools.definitions import ToolDefinition
from mcp_webtools.executor import UpstreamTimeout
from mcp_webtools.loading import load_definitions
from mcp_webtools.outcomes import OUTCOMES, CallRecord, Outcome
from mcp_webtools.requests import OutboundRequest
from mcp_webtools.sending import AttemptCount, SendPolicy, UpstreamResponse
from mcp_webtools.serving.runtime import open_webtools
from mcp_webtools.toolset import Toolset

pytestmark = pytest.mark.anyio


class Answering:
    """A sender that answers every request with `status` and `body`, or raises `error`."""

    def __init__(self, status: int = 200, body: bytes = b'{"id": 7, "name": "Ada"}', error: Exception | None = None):
        self.status, self.body, self.error = status, body, error
        self.requests: list[OutboundRequest] = []

    async def send(
        self, request: OutboundRequest, policy: SendPolicy, *, deadline: float, count: AttemptCount | None = None
    ) -> UpstreamResponse:
        self.requests.append(request)
        if count is not None:
            count.sent += 1
        if self.error is not None:
            raise self.error
        return UpstreamResponse(self.status, "Status", "application/json", self.body, False, 2.0)


def toolset_of(tmp_path, *tools: dict) -> Toolset:
    return Toolset.from_definitions(load_definitions([write_tools(tmp_path, list(tools))], environ={}).definitions)


async def test_tool_calls_run_without_mcp_and_leave_one_record_each(tmp_path):
    sender = Answering()
    records: list[CallRecord] = []
    toolset = toolset_of(tmp_path, hamsa_tool("User", "https://api.example/u"))
    calls = ToolCalls(toolset, sender, observers=[records.append])
    result = await calls.call("user", {}, request_id="r-1")
    assert result.is_error is False
    assert result.structured_content == {"id": 7, "name": "Ada", "api_response_status": 200}
    assert [r.url for r in sender.requests] == ["https://api.example/u"]
    [record] = records
    assert (record.tool, record.outcome, record.status, record.attempts, record.request_id) == (
        "user", "ok", 200, 1, "r-1"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sender", "arguments", "outcome", "text"),
    [
        (Answering(), {}, Outcome.OK, None),
        (Answering(status=404, body=b""), {}, Outcome.HTTP_ERROR, "The upstream API answered HTTP 404 Status."),
        (Answering(), {"id": 1}, Outcome.INVALID_ARGUMENTS, None),
        (
            Answering(error=UpstreamTimeout("timed out after 3 s", attempts=2)),
            {},
            Outcome.TIMEOUT,
            "Calling 'user' failed: timed out after 3 s.",
        ),
    ],
)
async def test_every_call_ends_in_an_outcome_of_the_one_vocabulary(tmp_path, sender, arguments, outcome, text):
    params = {"type": "object", "properties": {"id": {"type": "string"}}}
    records: list[CallRecord] = []
    tool = hamsa_tool("User", "https://api.example/u", params=params)
    calls = ToolCalls(toolset_of(tmp_path, tool), sender, observers=[records.append])
    result = await calls.call("user", arguments)
    [record] = records
    assert record.outcome is outcome and outcome in OUTCOMES
    if text is not None:
        assert result.content[0].text == text


async def test_a_call_still_queued_when_its_time_runs_out_is_busy_not_a_timeout(tmp_path):
    tool = hamsa_tool("User", "https://api.example/u", timeOut=0.2)
    records: list[CallRecord] = []
    calls = ToolCalls(toolset_of(tmp_path, tool), Answering(), observers=[records.append])
    prepared = calls.prepare("user", {})
    assert isinstance(prepared, PreparedCall)
    calls.limits.global_limiter.limit = 1
    async with calls.limits.global_limiter.hold():  # the one slot taken: the call queues until its timeout
        result = await calls.execute(prepared)
    assert result.content[0].text == (
        "Calling 'user' failed: timed out after 0.2 s waiting for a free slot (busy, try again shortly)."
    )
    assert [(r.outcome, r.attempts) for r in records] == [(Outcome.BUSY, 0)]


async def test_shaping_is_compiled_once_per_tool_at_load_not_on_each_call(tmp_path, monkeypatch):
    tool = {**hamsa_tool("User", "https://api.example/u"), "responseFields": ["name"]}
    calls = ToolCalls(toolset_of(tmp_path, tool), Answering())
    prepared = calls.toolset.get("user")
    assert prepared is not None and prepared.shaping.paths == (("name",),)

    def compiled_again(self: ToolDefinition) -> None:
        raise AssertionError("response shaping compiled again during a call")

    monkeypatch.setattr(ToolDefinition, "shaping", property(compiled_again))
    result = await calls.call("user", {})
    assert result.is_error is False and result.structured_content == {"name": "Ada", "api_response_status": 200}


async def test_a_call_cancelled_from_outside_is_recorded_with_the_attempts_it_sent(upstream, tmp_path):
    release = anyio.Event()
    upstream.reply("GET", "/slow", Reply(200, b"{}", [("content-type", "application/json")], wait=release))
    config = write_tools(tmp_path, [hamsa_tool("Slow", f"{upstream.url}/slow")])
    webtools = open_webtools([str(config)])
    records: list[CallRecord] = []
    webtools.calls.observers.append(records.append)
    async with webtools.executor.client, anyio.create_task_group() as tg:
        tg.start_soon(webtools.calls.call, "slow", {})
        with anyio.fail_after(30):
            while not upstream.requests:
                await anyio.sleep(0.005)
        tg.cancel_scope.cancel()
    release.set()
    assert [(r.outcome, r.attempts, r.status) for r in records] == [(Outcome.CANCELLED, 1, None)]
