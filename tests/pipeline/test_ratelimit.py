"""Rate limits on their own: token buckets on an injectable clock, all-or-none across limits, pauses, config.

Endpoint and client limits are tested here, at the engine: the server passes them with the tool's
own (`ToolCalls.call(..., limits=...)`); tool limits are also tested end to end (tests/serving).
"""

from __future__ import annotations

import pytest
from support import ManualClock, hamsa_tool, write_tools

from mcp_webtools.calls import ToolCalls
from mcp_webtools.errors import ConfigErrors, RateLimited
from mcp_webtools.loading import load_definitions, read_rate_limit
from mcp_webtools.ratelimit import MAX_PAUSE_SECONDS, LimitKey, MemoryStore, RateLimit, RateLimits
from mcp_webtools.sending import UpstreamResponse
from mcp_webtools.toolset import Toolset

pytestmark = pytest.mark.anyio


def limits_on(clock: ManualClock) -> RateLimits:
    return RateLimits(MemoryStore(clock=clock))


async def refusal(limits: RateLimits, keys: list, upstream: str = "") -> RateLimited | None:
    try:
        await limits.acquire(keys, upstream=upstream)
    except RateLimited as exc:
        return exc
    return None


async def test_a_bucket_lets_the_burst_through_then_refills_at_the_rate():
    clock = ManualClock()
    limits = limits_on(clock)
    per_minute = LimitKey("tool", "orders", RateLimit(requests=60, per="minute", burst=3))
    assert [await refusal(limits, [per_minute]) for _ in range(3)] == [None] * 3
    refused = await refusal(limits, [per_minute])
    assert refused is not None and (refused.limit, refused.retry_after) == ("tool 'orders'", 1.0)
    assert str(refused) == "the rate limit of tool 'orders' (60 per minute, burst 3) is reached; try again in 1 s"
    clock.now += 0.5
    assert (await refusal(limits, [per_minute])).retry_after == 0.5
    clock.now += 0.5
    assert await refusal(limits, [per_minute]) is None  # exactly one token refilled, taken
    assert await refusal(limits, [per_minute]) is not None
    clock.now += 3600  # a long quiet spell refills up to the burst, no further
    assert [await refusal(limits, [per_minute]) is None for _ in range(4)] == [True, True, True, False]


async def test_without_a_burst_the_bucket_holds_one_periods_requests():
    clock = ManualClock()
    limits = limits_on(clock)
    hourly = ("client", "ide", RateLimit(requests=2, per="hour"))  # a plain tuple, as endpoint code may pass
    assert [await refusal(limits, [hourly]) is None for _ in range(3)] == [True, True, False]
    refused = await refusal(limits, [hourly])
    assert (refused.limit, refused.retry_after) == ("client 'ide'", 1800.0)
    assert str(refused) == "the rate limit of client 'ide' (2 per hour) is reached; try again in 1800 s"


async def test_all_limits_hold_and_a_refusal_by_one_takes_from_none():
    """Tool burst 2, client `a` burst 1: a's second call is refused by its client limit and leaves
    the tool's second token for client b; only then is the tool's own limit the one that refuses."""
    clock = ManualClock()
    limits = limits_on(clock)
    tool = LimitKey("tool", "orders", RateLimit(requests=2, per="hour"))
    client_a = LimitKey("client", "a", RateLimit(requests=1, per="hour"))
    client_b = LimitKey("client", "b", RateLimit(requests=5, per="hour"))
    endpoint = LimitKey("endpoint", "sales", RateLimit(requests=10, per="hour"))
    assert await refusal(limits, [tool, endpoint, client_a]) is None
    refused = await refusal(limits, [tool, endpoint, client_a])
    assert refused.limit == "client 'a'"
    assert await refusal(limits, [tool, endpoint, client_b]) is None  # the tool's token was not used up
    refused = await refusal(limits, [tool, endpoint, client_b])
    assert refused.limit == "tool 'orders'"
    assert (refused.retry_after, str(refused).split(";")[0]) == (
        1800.0,
        "the rate limit of tool 'orders' (2 per hour) is reached",
    )
    # client b and the endpoint kept their tokens through the tool's refusal: 2 of 10 used, 1 of 5.
    other = LimitKey("tool", "other", RateLimit(requests=100, per="hour"))
    assert [await refusal(limits, [other, endpoint, client_b]) is None for _ in range(5)] == [True] * 4 + [False]


async def test_an_endpoint_limit_names_the_endpoint():
    clock = ManualClock()
    limits = limits_on(clock)
    endpoint = LimitKey("endpoint", "support", RateLimit(requests=10, per="second", burst=1))
    assert await refusal(limits, [endpoint]) is None
    refused = await refusal(limits, [endpoint])
    assert (refused.limit, refused.retry_after) == ("endpoint 'support'", 0.1)
    assert (
        str(refused) == "the rate limit of endpoint 'support' (10 per second, burst 1) is reached; try again in 0.1 s"
    )


async def test_an_upstream_pause_refuses_its_tool_only_until_it_ends_and_takes_no_token():
    clock = ManualClock()
    limits = limits_on(clock)
    tool = LimitKey("tool", "orders", RateLimit(requests=1, per="hour"))
    await limits.pause("orders", 30)
    refused = await refusal(limits, [tool], upstream="orders")
    assert (refused.limit, refused.retry_after) == ("the upstream of tool 'orders'", 30.0)
    assert str(refused) == (
        "the upstream API of tool 'orders' asked to wait (HTTP 429 with Retry-After); try again in 30 s"
    )
    assert await refusal(limits, [], upstream="other") is None  # other tools go on
    await limits.pause("orders", 10)  # a shorter second pause does not cut the first short
    clock.now += 29.5
    assert await limits.paused_for("orders") == 0.5
    clock.now += 0.5
    assert await limits.paused_for("orders") == 0
    assert await refusal(limits, [tool], upstream="orders") is None  # the pause took no token
    await limits.pause("orders", 10 * 24 * 3600)  # a Retry-After of days is capped
    assert await limits.paused_for("orders") == MAX_PAUSE_SECONDS


# -- config ---------------------------------------------------------------------------------------


def guide_tool(name: str) -> dict:
    """A tool in the integration guide's flat shape."""
    return {"name": name, "methodType": "GET", "url": f"https://api.example.com/{name}"}


def test_a_rate_limit_is_read_in_any_definition_shape(tmp_path):
    guide = {
        "name": "g",
        "methodType": "GET",
        "url": "https://api.example.com/g",
        "rateLimit": {"requests": 5, "per": "second"},
    }
    api = {**hamsa_tool("a", "https://api.example.com/a"), "rateLimit": {"requests": 60, "per": "minute", "burst": 10}}
    envelope = {
        "success": True,
        "message": "",
        "data": [{**hamsa_tool("e", "https://api.example.com/e"), "rateLimit": {"requests": 1, "per": "hour"}}],
    }
    write_tools(tmp_path, [guide, api], "tools.json")
    write_tools(tmp_path, envelope, "envelope.json")
    loaded = load_definitions([str(tmp_path)])
    assert {d.name: d.rate_limit for d in loaded.definitions} == {
        "g": RateLimit(requests=5, per="second"),
        "a": RateLimit(requests=60, per="minute", burst=10),
        "e": RateLimit(requests=1, per="hour"),
    }


def test_rate_limit_config_errors_name_the_file_the_tool_and_the_field(tmp_path):
    bad = [
        {
            "name": "a",
            "methodType": "GET",
            "url": "https://api.example.com/a",
            "rateLimit": {"requests": 0, "per": "day", "burst": "x", "every": 1},
        },
        {"name": "b", "methodType": "GET", "url": "https://api.example.com/b", "rateLimit": 5},
        {
            "name": "c",
            "methodType": "GET",
            "url": "https://api.example.com/c",
            "rateLimit": {"per": "minute", "requests": 1.5},
        },
    ]
    config = write_tools(tmp_path, bad)
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([str(config)])
    assert [str(problem) for problem in caught.value.errors] == [
        f"{config}: tool 'a': field `[0].rateLimit.requests`: must be at least 1",
        f"{config}: tool 'a': field `[0].rateLimit.per`: must be one of second, minute, hour",
        f"{config}: tool 'a': field `[0].rateLimit.burst`: must be a whole number",
        f"{config}: tool 'a': field `[0].rateLimit.every`: is not a known setting",
        f"{config}: tool 'b': field `[1].rateLimit`: must be an object",
        f"{config}: tool 'c': field `[2].rateLimit.requests`: must be a whole number",
    ]


def test_an_endpoint_or_client_rate_limit_is_read_with_the_same_rules():
    assert read_rate_limit({"requests": 60, "per": "minute", "burst": 10}) == (
        RateLimit(requests=60, per="minute", burst=10),
        [],
    )
    assert read_rate_limit(None) == (None, [])
    assert read_rate_limit({"requests": 0, "per": "week", "extra": True}, "clients[1].rateLimit") == (
        None,
        [
            ("clients[1].rateLimit.requests", "must be at least 1"),
            ("clients[1].rateLimit.per", "must be one of second, minute, hour"),
            ("clients[1].rateLimit.extra", "is not a known setting"),
        ],
    )
    assert read_rate_limit("60/min") == (None, [("rateLimit", "must be an object")])


# -- in ToolCalls --------------------------------------------------------------------------------


class Answering:
    """A sender that answers 200 to every request and counts them."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, request, policy, *, deadline, count=None) -> UpstreamResponse:
        self.sent += 1
        count.sent += 1
        return UpstreamResponse(200, "OK", "application/json", b"{}", False, 1.0)


async def test_a_reload_that_changes_a_limit_applies_it_to_the_next_call(tmp_path):
    """The bucket is kept by tool name, so calls already counted still count; the new size applies."""
    clock = ManualClock()

    def toolset(limit: dict) -> Toolset:
        tool = {**hamsa_tool("Orders", "https://api.example.com/o"), "rateLimit": limit}
        folder = tmp_path / str(limit["requests"])
        return Toolset.from_definitions(load_definitions([write_tools(folder, [tool])], environ={}).definitions)

    sender, records = Answering(), []
    calls = ToolCalls(
        toolset({"requests": 1, "per": "hour"}), sender, observers=[records.append], rate_limits=limits_on(clock)
    )
    assert (await calls.call("orders", {})).is_error is False
    refused = await calls.call("orders", {})
    assert refused.is_error is True and sender.sent == 1
    assert [(r.outcome, r.status, r.attempts) for r in records] == [("ok", 200, 1), ("rate_limited", None, 0)]
    calls.replace_toolset(toolset({"requests": 3, "per": "hour"}))
    # The one call made still counts against the new size: two more, then refused.
    assert [(await calls.call("orders", {})).is_error for _ in range(3)] == [False, False, True]
    assert sender.sent == 3
