"""Prometheus metrics for one running server, served at `GET /metrics`.

Only an HTTP server has them (`runtime.open_webtools(metrics=...)`): over stdio nothing could read
them, so prometheus-client is not even imported there.

Each `Metrics` has its own `CollectorRegistry` (not prometheus-client's global one), so several
servers in one process (tests, the demo) never share or clash over counters. The per-call
metrics are fed from the same `outcomes.CallRecord` as the audit log (`Metrics.observe_call`).

Label values are bounded: `tool` is always a configured tool name (a call naming an unknown tool
is refused before any record exists), `outcome` one of `outcomes.Outcome`, `status_class` one of
1xx..5xx, `result` ok/error, `reason` one of `UNAUTHORIZED_REASONS`, `client` a configured client's
id (`clients`, read at each call, so a reload's clients count at once), `none` for a call no client
made (stdio, no tokens), and `other` for anything else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Container
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..outcomes import CallRecord

__all__ = ["CONTENT_TYPE", "DURATION_BUCKETS", "NO_CLIENT", "OTHER_CLIENT", "UNAUTHORIZED_REASONS", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From 1 ms (a call refused before it was sent) to 60 s (the longest sensible tool timeout), roughly x2.5 apart.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Why the bearer-token guard refused a request (http_app.BearerTokenGuard says what each means).
UNAUTHORIZED_REASONS = ("missing", "scheme", "overlong", "wrong")
# The `client` label of a call no authenticated client made, and of a client no longer configured.
NO_CLIENT, OTHER_CLIENT = "none", "other"


class Metrics:
    """The server's metrics. `in_flight` and `tools_loaded` are read when scraped."""

    content_type = CONTENT_TYPE  # of `exposition()`

    def __init__(
        self,
        *,
        in_flight: Callable[[], int],
        tools_loaded: Callable[[], int],
        clients: Callable[[], Container[str]] = frozenset,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clients = clients  # the configured client ids now: the `client` label's values
        self.calls = Counter(
            "mcp_webtools_tool_calls",
            "Tool calls by tool, outcome and client (the outcomes: docs/operations.md, Observability).",
            ["tool", "outcome", "client"],
            registry=self.registry,
        )
        self.upstream_responses = Counter(
            "mcp_webtools_upstream_responses",
            "Tool calls that got an HTTP answer from the upstream API, by status class of the last attempt.",
            ["tool", "status_class"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mcp_webtools_tool_call_duration_seconds",
            "How long tool calls took, queueing and every attempt included.",
            ["tool"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        in_flight_gauge = Gauge(
            "mcp_webtools_calls_in_flight", "Tool calls running now (queued ones included).", registry=self.registry
        )
        in_flight_gauge.set_function(in_flight)
        tools_gauge = Gauge(
            "mcp_webtools_tools_loaded", "Tools in the configuration now served.", registry=self.registry
        )
        tools_gauge.set_function(tools_loaded)
        self.reloads = Counter(
            "mcp_webtools_config_reloads",
            "Configuration reloads by result (ok: swapped in; error: rejected, the last good set kept).",
            ["result"],
            registry=self.registry,
        )
        for result in ("ok", "error"):
            self.reloads.labels(result=result)  # present at 0 from the start, so rate() and alerts work
        self.last_reload_success = Gauge(
            "mcp_webtools_config_last_reload_success",
            "1 if the last configuration reload succeeded (or none was tried yet), 0 if it was rejected.",
            registry=self.registry,
        )
        self.last_reload_success.set(1)
        self.last_reload_timestamp = Gauge(
            "mcp_webtools_config_last_reload_timestamp_seconds",
            "When the configuration was last loaded or a reload last tried (Unix time).",
            registry=self.registry,
        )
        self.last_reload_timestamp.set(time.time())
        self.unauthorized = Counter(
            "mcp_webtools_unauthorized_requests",
            "HTTP requests refused with 401 for want of the right bearer token, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in UNAUTHORIZED_REASONS:
            self.unauthorized.labels(reason=reason)  # at 0 from the start, so rate() and alerts work
        # Behind the token, unlike the probes: tells the processes of `serve --workers N` apart.
        process_id = Gauge(
            "mcp_webtools_process_id", "The id of the server process that answered this scrape.", registry=self.registry
        )
        process_id.set_function(os.getpid)  # read when scraped: right in a forked worker too
        # Labelled children by (tool, outcome, status class, client): bounded, as the labels are (see above).
        self._call_children: dict[tuple[str, str, str | None, str], tuple[Any, Any, Any]] = {}

    def observe_call(self, record: CallRecord) -> None:
        """Count one finished call (a `CallObserver`)."""
        status = record.status
        status_class = f"{status // 100}xx" if status is not None and 100 <= status <= 599 else None
        client = record.client
        if client is None:
            client = NO_CLIENT
        elif client not in self._clients():
            client = OTHER_CLIENT
        key = (record.tool, record.outcome, status_class, client)
        children = self._call_children.get(key)
        if children is None:
            # `labels()` takes a lock and builds a key on every use; the children are the same each time.
            children = self._call_children[key] = (
                self.calls.labels(tool=record.tool, outcome=record.outcome, client=client),
                self.upstream_responses.labels(tool=record.tool, status_class=status_class) if status_class else None,
                self.duration.labels(tool=record.tool),
            )
        calls, responses, duration = children
        calls.inc()
        if responses is not None:
            responses.inc()
        duration.observe(record.duration_ms / 1000)

    def observe_reload(self, ok: bool) -> None:
        """Count one configuration reload: `ok` if it was swapped in, else it was rejected."""
        self.reloads.labels(result="ok" if ok else "error").inc()
        self.last_reload_success.set(1 if ok else 0)
        self.last_reload_timestamp.set(time.time())

    def observe_unauthorized(self, reason: str) -> None:
        """Count one request the bearer-token guard refused; `reason` is one of `UNAUTHORIZED_REASONS`."""
        self.unauthorized.labels(reason=reason).inc()

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
