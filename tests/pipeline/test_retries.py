"""Retries that never duplicate a side effect, all inside the tool's deadline.

By default only GET, PUT and DELETE are retried, on connection errors, timeouts, 502/503/504 and
429. POST and PATCH are sent once unless the tool opts in (`retry.retryNonIdempotent`), and then
every attempt of one call carries the same idempotency key. The upstream's own record of what it
received is the evidence: the exact attempts, and the headers of each.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx2
import pydantic
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import ERAS, TRANSPORTS, Recorded, Reply, hamsa_tool, mcp_client, serve_asgi, write_tools
from test_executor_wire_faults import RawRequest, RawUpstream, answer, response_head, serve_raw, text_of, with_settings

from mcp_webtools.retries import RetryPolicy, parse_retry_after
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_webtools

pytestmark = pytest.mark.anyio

META_HTTP = "mcp-webtools/http"
JSON = [("content-type", "application/json")]
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
NO_WAIT = {"backoffSeconds": 0}  # the default two retries, without jittered waits
OPT_IN = {**NO_WAIT, "retryNonIdempotent": True}
MAYBE_DONE = "; the {method} may still have taken effect upstream, so check before calling again"


class Edge(random.Random):
    """An RNG stub for the jitter: always the top (or bottom) of the range, and what was asked."""

    def __init__(self, top: bool = True) -> None:
        super().__init__(0)
        self.top = top
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return b if self.top else a


# --- the policy on its own --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "method", "attempts", "keyed"),
    [
        ({}, "GET", 3, False),
        ({}, "PUT", 3, False),
        ({}, "DELETE", 3, False),
        ({}, "POST", 1, False),
        ({}, "PATCH", 1, False),
        ({"retries": 0}, "GET", 1, False),
        ({"retries": 5}, "DELETE", 6, False),
        ({"retryNonIdempotent": True}, "POST", 3, True),
        ({"retryNonIdempotent": True}, "PATCH", 3, True),
        ({"retryNonIdempotent": True}, "PUT", 3, False),  # idempotent anyway: no key needed
        ({"retryNonIdempotent": True, "retries": 0}, "POST", 1, False),  # sent once: no key needed
    ],
)
def test_attempts_and_keys_per_method(settings, method, attempts, keyed):
    policy = RetryPolicy.model_validate(settings)
    assert (policy.max_attempts(method), policy.needs_idempotency_key(method)) == (attempts, keyed)


@pytest.mark.parametrize(
    "settings",
    [{"retries": 11}, {"retries": -1}, {"retries": "2"}, {"idempotencyHeader": "Idem Key"}, {"backoff": 1}],
)
def test_bad_retry_settings_are_refused(settings):
    with pytest.raises(pydantic.ValidationError):
        RetryPolicy.model_validate(settings)


def test_backoff_ceiling_doubles_up_to_the_cap_and_the_wait_is_drawn_below_it():
    policy = RetryPolicy()  # 0.2 s, doubling, capped at 2 s
    top, bottom = Edge(top=True), Edge(top=False)
    assert [policy.backoff(n, top) for n in range(1, 7)] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert top.asked == [(0, 0.2), (0, 0.4), (0, 0.8), (0, 1.6), (0, 2.0), (0, 2.0)]
    assert [policy.backoff(n, bottom) for n in range(1, 4)] == [0, 0, 0]
    assert RetryPolicy(retries=10, backoffSeconds=60, maxBackoffSeconds=300).backoff(10, top) == 300


def test_backoff_jitter_is_spread_and_reproducible():
    policy = RetryPolicy()
    draws = [policy.backoff(3, rng) for rng in [random.Random(1)] for _ in range(500)]
    assert all(0 <= d <= 0.8 for d in draws)
    assert min(draws) < 0.05 and max(draws) > 0.75 and len(set(draws)) == 500  # full jitter, not a fixed wait
    assert [policy.backoff(2, random.Random(7)) for _ in range(3)] == [policy.backoff(2, random.Random(7))] * 3


NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Sun, 22 Nov 2026 12:00:30 GMT", 30.0),
        ("Sunday, 22-Nov-26 12:01:00 GMT", 60.0),  # the obsolete RFC 850 form
        ("Sun, 22 Nov 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        (None, None),
        ("", None),
        ("1.5", None),  # delta-seconds is a whole number
        ("-1", None),
        ("soon", None),
        ("²", None),  # str.isdigit() says yes; float() says no
        ("٣", None),  # an Arabic-Indic three: not an ASCII digit
        ("Mon, 01 Jan 99999 00:00:00 GMT", None),
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_an_http_date_is_rounded_up_to_a_whole_second():
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now=NOW + timedelta(milliseconds=200)) == 30.0


# --- which answers are retried, over a real client ------------------------------------------------------

RETRIED, ONCE = 3, 1


@pytest.mark.parametrize(
    ("method", "status", "retry", "attempts"),
    [
        *[("GET", status, NO_WAIT, RETRIED) for status in (429, 502, 503, 504)],
        *[("GET", status, NO_WAIT, ONCE) for status in (500, 400, 401, 404, 409)],
        ("PUT", 503, NO_WAIT, RETRIED),
        ("DELETE", 504, NO_WAIT, RETRIED),
        ("PUT", 500, NO_WAIT, ONCE),
        *[(method, status, NO_WAIT, ONCE) for method in ("POST", "PATCH") for status in (429, 502, 503, 504)],
        ("POST", 503, OPT_IN, RETRIED),
        ("PATCH", 429, OPT_IN, RETRIED),
        ("POST", 500, OPT_IN, ONCE),
        ("PATCH", 409, OPT_IN, ONCE),
        ("GET", 503, {**NO_WAIT, "retries": 0}, ONCE),
        ("DELETE", 502, {**NO_WAIT, "retries": 4}, 5),
    ],
)
async def test_the_upstream_sees_exactly_the_attempts_the_policy_allows(
    upstream, tmp_path, method, status, retry, attempts
):
    upstream.reply(method, "/thing", Reply(status, b'{"error": "nope"}', JSON))
    tool = with_settings(hamsa_tool("Thing", f"{upstream.url}/thing", method, {"type": "object"}), retry=retry)
    config = write_tools(tmp_path, tool)
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("thing", {"n": 1})

    seen = upstream.requests
    assert len(seen) == attempts
    first = seen[0]
    # Every attempt is the same request: method, path, body and every header.
    assert all(
        (r.method, r.raw_path, r.body, r.header_list) == (method, "/thing", first.body, first.header_list) for r in seen
    )
    # A POST that may be retried carries a key from its first attempt: no one knows yet if it will need one.
    keyed = method in ("POST", "PATCH") and retry.get("retryNonIdempotent", False)
    assert ("idempotency-key" in first.headers) is keyed
    if keyed:
        assert UUID4.fullmatch(first.headers["idempotency-key"])
    assert result.is_error is True
    assert result.meta[META_HTTP].get("attempts") == (attempts if attempts > 1 else None)
    after = f" (after {attempts} attempts)" if attempts > 1 else ""
    assert text_of(result).startswith(f"The upstream API answered HTTP {status} {httpx2.codes(status).phrase}{after}.")


async def test_a_retry_that_succeeds_is_a_success_that_says_how_many_attempts(upstream, tmp_path):
    statuses = iter([503, 429, 200])
    upstream.reply("GET", "/flaky", lambda seen: Reply(next(statuses), b'{"ok": true}', JSON))
    config = write_tools(tmp_path, with_settings(hamsa_tool("Flaky", f"{upstream.url}/flaky"), retry=NO_WAIT))
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("flaky", {})
    assert result.is_error is False and result.structured_content["ok"] is True
    meta = result.meta[META_HTTP]
    assert (meta["status"], meta["attempts"], "retryAfterSeconds" in meta) == (200, 3, False)
    assert len(upstream.requests) == 3


# --- connection errors and timeouts ---------------------------------------------------------------------


def fail_twice(fault: str):
    """The first two attempts fail (`dropped`: closed before any answer; `hung`: no answer at all)."""

    async def behave(raw: RawUpstream, writer: asyncio.StreamWriter, request: RawRequest) -> None:
        if len(raw.requests) > 2:
            await answer(writer, "200 OK", b'{"done": true}')
        elif fault == "hung":
            await raw.release.wait()
        # "dropped": return; the connection is closed without a byte of answer

    return behave


FAULT_TEXT = {
    "dropped": "the connection to the upstream API broke before the answer was complete "
    "(Server disconnected without sending a response.)",
    "hung": "timed out after 0.3 s",
}


@pytest.mark.parametrize("fault", ["dropped", "hung"])
@pytest.mark.parametrize(
    ("method", "retry", "attempts"),
    [("GET", NO_WAIT, 3), ("DELETE", NO_WAIT, 3), ("POST", NO_WAIT, 1), ("POST", OPT_IN, 3), ("PATCH", OPT_IN, 3)],
)
async def test_connection_errors_and_timeouts(tmp_path, fault, method, retry, attempts):
    async with serve_raw(fail_twice(fault)) as raw:
        tool = hamsa_tool("Job", f"{raw.url}/job", method, timeOut=30)
        config = write_tools(tmp_path, with_settings(tool, retry={**retry, "attemptTimeoutSeconds": 0.3}))
        async with mcp_client("http", "legacy", config) as client:
            result = await client.call_tool("job", {})

    assert len(raw.requests) == attempts
    keys = [r.header("idempotency-key") for r in raw.requests]
    if method in ("POST", "PATCH") and attempts > 1:
        # Never a retried POST without the key, never two keys, and the same key every time.
        assert all(len(k) == 1 for k in keys) and len({k[0] for k in keys}) == 1 and UUID4.fullmatch(keys[0][0])
    else:
        assert keys == [[]] * attempts
    if attempts == 3:
        assert result.is_error is False and result.structured_content["done"] is True
        assert result.meta[META_HTTP]["attempts"] == 3
    else:
        assert (result.is_error, text_of(result)) == (
            True,
            f"Calling 'job' failed: {FAULT_TEXT[fault]}{MAYBE_DONE.format(method=method)}.",
        )


async def test_an_attempt_timeout_bounds_a_trickled_body_too(tmp_path):
    """httpx's timeouts bound each socket read, so a byte every 50 ms never trips them; the
    attempt timeout must bound the attempt as a whole, or a retry never happens."""

    async def trickle_then_answer(raw: RawUpstream, writer: asyncio.StreamWriter, request: RawRequest) -> None:
        if len(raw.requests) > 1:
            await answer(writer, "200 OK", b'{"second": true}')
            return
        writer.write(response_head("200 OK", [("Content-Type", "application/json"), ("Content-Length", "100000")]))
        while not raw.release.is_set():
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)  # pacing the trickle, not synchronisation

    async with serve_raw(trickle_then_answer) as raw:
        tool = hamsa_tool("Slow", f"{raw.url}/slow", timeOut=5)
        config = write_tools(tmp_path, with_settings(tool, retry={**NO_WAIT, "attemptTimeoutSeconds": 0.5}))
        async with mcp_client("http", "legacy", config) as client:
            result = await client.call_tool("slow", {})
    assert result.is_error is False, text_of(result)
    assert result.structured_content["second"] is True and result.meta[META_HTTP]["attempts"] == 2


# --- idempotency keys -------------------------------------------------------------------------------------


def unavailable_twice() -> Any:
    count = 0

    def reply(seen: Recorded) -> Reply:
        nonlocal count
        count += 1
        return Reply(201, b'{"created": true}', JSON) if count % 3 == 0 else Reply(503, b"busy", [])

    return reply


@pytest.mark.parametrize(("transport", "era"), [(t, e) for t in TRANSPORTS for e in ERAS])
async def test_every_attempt_of_a_call_carries_the_same_fresh_key(upstream, tmp_path, transport, era):
    upstream.reply("POST", "/orders", unavailable_twice())
    tool = hamsa_tool("Create Order", f"{upstream.url}/orders", "POST", {"type": "object"})
    config = write_tools(tmp_path, with_settings(tool, retry=OPT_IN))
    async with mcp_client(transport, era, config) as client:
        first = await client.call_tool("create_order", {"sku": "a"})
        second = await client.call_tool("create_order", {"sku": "a"})
    assert [r.structured_content["created"] for r in (first, second)] == [True, True]
    assert [r.meta[META_HTTP]["attempts"] for r in (first, second)] == [3, 3]
    seen = upstream.requests
    assert [(r.method, r.raw_path, r.body) for r in seen] == [("POST", "/orders", b'{"sku":"a"}')] * 6
    keys = [[v for k, v in r.header_list if k.lower() == "idempotency-key"] for r in seen]
    assert all(len(k) == 1 and UUID4.fullmatch(k[0]) for k in keys)
    assert keys[0] == keys[1] == keys[2] and keys[3] == keys[4] == keys[5] and keys[0] != keys[3]


async def test_the_key_header_is_configurable_and_an_operator_header_wins(upstream, tmp_path):
    upstream.reply("POST", "/named", unavailable_twice())
    upstream.reply("POST", "/fixed", unavailable_twice())
    named = hamsa_tool("Named", f"{upstream.url}/named", "POST")
    fixed = hamsa_tool("Fixed", f"{upstream.url}/fixed", "POST", httpHeaders={"idempotency-key": "op-key-1"})
    config = write_tools(
        tmp_path,
        [
            with_settings(named, retry={**OPT_IN, "idempotencyHeader": "X-Request-Id"}),
            with_settings(fixed, retry=OPT_IN),
        ],
    )
    async with mcp_client("http", "legacy", config) as client:
        assert (await client.call_tool("named", {})).is_error is False
        assert (await client.call_tool("fixed", {})).is_error is False

    def values(request: Recorded, name: str) -> list[str]:
        return [v for k, v in request.header_list if k.lower() == name]

    by_path = {path: [r for r in upstream.requests if r.raw_path == path] for path in ("/named", "/fixed")}
    assert [len(v) for v in by_path.values()] == [3, 3]
    named_keys = [values(r, "x-request-id") for r in by_path["/named"]]
    assert named_keys[0] == named_keys[1] == named_keys[2] and UUID4.fullmatch(named_keys[0][0])
    assert all(values(r, "idempotency-key") == [] for r in by_path["/named"])
    assert [values(r, "idempotency-key") for r in by_path["/fixed"]] == [["op-key-1"]] * 3


# --- Retry-After and the deadline ---------------------------------------------------------------------------


def http_date(seconds_from_now: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_retry_after_is_honoured_within_the_deadline(upstream, tmp_path, form):
    arrivals: list[float] = []

    def limited(seen: Recorded) -> Reply:
        arrivals.append(time.monotonic())
        if len(arrivals) > 1:
            return Reply(200, b'{"ok": true}', JSON)
        return Reply(429, b"slow down", [("retry-after", "1" if form == "seconds" else http_date(2))])

    upstream.reply("GET", "/limited", limited)
    config = write_tools(
        tmp_path, with_settings(hamsa_tool("Limited", f"{upstream.url}/limited", timeOut=10), retry=NO_WAIT)
    )
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("limited", {})
    assert result.is_error is False and result.meta[META_HTTP]["attempts"] == 2
    assert "retryAfterSeconds" not in result.meta[META_HTTP]  # the final answer did not ask
    # With no backoff configured, only the header can explain the wait (a lower bound: never flaky).
    assert arrivals[1] - arrivals[0] >= 0.95


@pytest.mark.parametrize(
    ("method", "retry_after", "seconds"),
    [("GET", "120", [120.0]), ("GET", "http-date", [3599.0, 3600.0]), ("POST", "1", [1.0])],
    ids=["too-long-seconds", "too-long-date", "post-is-not-retried"],
)
async def test_retry_after_is_not_waited_for_past_the_deadline(upstream, tmp_path, method, retry_after, seconds):
    header = http_date(3600) if retry_after == "http-date" else retry_after
    upstream.reply(
        method, "/limited", Reply(429, b"slow down", [("retry-after", header), ("content-type", "text/plain")])
    )
    config = write_tools(tmp_path, hamsa_tool("Limited", f"{upstream.url}/limited", method, timeOut=5))
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("limited", {})
    assert len(upstream.requests) == 1
    meta = result.meta[META_HTTP]
    assert set(meta) == {"status", "elapsedMs", "retryAfterSeconds"} and meta["retryAfterSeconds"] in seconds
    assert (result.is_error, text_of(result)) == (
        True,
        "The upstream API answered HTTP 429 Too Many Requests. "
        f"It asked to retry after {meta['retryAfterSeconds']:g} s.\nResponse body:\nslow down",
    )


async def test_an_unreadable_retry_after_falls_back_to_the_backoff(upstream, tmp_path):
    upstream.reply("GET", "/odd", Reply(503, b"", [("retry-after", "²")]))
    config = write_tools(tmp_path, with_settings(hamsa_tool("Odd", f"{upstream.url}/odd"), retry=NO_WAIT))
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("odd", {})
    assert (result.is_error, text_of(result)) == (
        True,
        "The upstream API answered HTTP 503 Service Unavailable (after 3 attempts).",
    )
    assert "retryAfterSeconds" not in result.meta[META_HTTP] and len(upstream.requests) == 3


async def test_retries_stop_at_the_deadline(upstream, tmp_path):
    """Retry-After 2 s inside a 3 s deadline: one wait fits, a second cannot (2 + 2 > 3), however
    slow the machine; so the upstream sees exactly two attempts and the answer is the last one."""
    upstream.reply("GET", "/busy", Reply(503, b"", [("retry-after", "2")]))
    tool = hamsa_tool("Busy", f"{upstream.url}/busy", timeOut=3)
    config = write_tools(tmp_path, with_settings(tool, retry={**NO_WAIT, "retries": 10}))
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("busy", {})
    assert len(upstream.requests) == 2
    assert (result.is_error, text_of(result)) == (
        True,
        "The upstream API answered HTTP 503 Service Unavailable (after 2 attempts). It asked to retry after 2 s.",
    )
    meta = result.meta[META_HTTP]
    assert (meta["attempts"], meta["retryAfterSeconds"]) == (2, 2.0) and 2000 <= meta["elapsedMs"] < 3000


@asynccontextmanager
async def client_with_rng(config: Path, rng: random.Random) -> AsyncIterator[Client]:
    """Like `support.mcp_client("http", "legacy", ...)`, with the executor's jitter RNG replaced."""
    webtools = open_webtools([str(config)], environ=os.environ)
    webtools.executor.rng = rng
    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy") as client:
            yield client


async def test_backoff_waits_double_and_stop_before_the_deadline(upstream, tmp_path):
    """Jitter pinned to the top of its range: waits of 0.4 s then 0.8 s fit in 2 s; the next,
    1.6 s, would end past the deadline, so the call ends after three attempts."""
    arrivals: list[float] = []

    def unavailable(seen: Recorded) -> Reply:
        arrivals.append(time.monotonic())
        return Reply(503, b"", [])

    upstream.reply("GET", "/down", unavailable)
    tool = hamsa_tool("Down", f"{upstream.url}/down", timeOut=2)
    config = write_tools(
        tmp_path, with_settings(tool, retry={"retries": 10, "backoffSeconds": 0.4, "maxBackoffSeconds": 10})
    )
    rng = Edge(top=True)
    async with client_with_rng(config, rng) as client:
        result = await client.call_tool("down", {})
    assert rng.asked == [(0, 0.4), (0, 0.8), (0, 1.6)]
    assert len(arrivals) == 3 and result.meta[META_HTTP]["attempts"] == 3
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert gaps[0] >= 0.39 and gaps[1] >= 0.79
    assert text_of(result) == "The upstream API answered HTTP 503 Service Unavailable (after 3 attempts)."
