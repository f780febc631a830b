"""How a tool call ended: the one vocabulary of outcomes, and the record every observer receives.

Each call that ends (or is refused for its arguments) leaves one `CallRecord`; the observers
handed to `calls.ToolCalls` at assembly turn it into the audit log line (observe/audit.py), the
metrics (observe/metrics.py) and the trace span's attributes (observe/telemetry.py). Its
`outcome` is an `Outcome`: those values and no others appear in the audit log, the metrics'
`outcome` label, the span's `mcp_webtools.outcome` and the list in docs/operations.md, so dashboards and
alerts can rely on the set (and metric labels stay bounded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .redaction import Redactor

__all__ = ["OUTCOMES", "CallObserver", "CallRecord", "Outcome"]


class Outcome(StrEnum):
    OK = "ok"  # the upstream answered 2xx
    # The upstream answered 2xx with more than maxResponseBytes: the client got the beginning, or an error.
    TRUNCATED = "truncated"
    # The upstream answered 2xx, but not as the tool can pass on (outputSchema, nesting): an error.
    INVALID_RESPONSE = "invalid_response"
    HTTP_ERROR = "http_error"  # the upstream answered, with another status (see `status`)
    # No HTTP answer: unreachable, connection lost, TLS, egress refused, request not sendable.
    UPSTREAM_ERROR = "upstream_error"
    TIMEOUT = "timeout"  # the tool's timeout passed while waiting on the upstream
    # No access token for the upstream: the OAuth2 token endpoint refused, failed, hung or answered nonsense.
    AUTH_ERROR = "auth_error"
    BUSY = "busy"  # no free slot: the queue was full, or the timeout passed while queued
    # Refused by a rate limit (tool, endpoint or client) or an upstream's 429 pause: nothing was sent.
    RATE_LIMITED = "rate_limited"
    INVALID_ARGUMENTS = "invalid_arguments"  # refused before anything was sent
    CANCELLED = "cancelled"  # the client cancelled the call or went away
    SHUTDOWN = "shutdown"  # refused or cancelled because the server is shutting down
    INTERNAL_ERROR = "internal_error"  # a bug of ours


# The whole set, in the order above.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """How one tools/call ended. `status` is None when no HTTP answer came back."""

    tool: str
    method: str
    url_template: str
    outcome: str  # an `Outcome`
    status: int | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    request_bytes: int = 0
    response_bytes: int = 0
    request_id: str | int | None = None
    client: str | None = None  # the configured client's id (endpoints.py); None over stdio or unauthenticated

    def redacted(self, redactor: Redactor) -> CallRecord:
        """The same record with every string through `redactor` (a URL template may hold a `${SECRET}`)."""
        if not redactor:  # no secrets loaded: nothing to hide, and no copy to make on every call
            return self
        return dataclasses.replace(
            self,
            tool=redactor(self.tool),
            method=redactor(self.method),
            url_template=redactor(self.url_template),
            request_id=redactor(self.request_id) if isinstance(self.request_id, str) else self.request_id,
        )

    def fields(self) -> dict[str, object]:
        """The record as flat log fields (the JSON log format puts them at the top level)."""
        # Not `dataclasses.asdict`, which deep-copies every value: a cost paid on every call.
        fields: dict[str, object] = {name: getattr(self, name) for name in _FIELD_NAMES}
        fields["duration_ms"] = round(self.duration_ms, 3)
        return fields


_FIELD_NAMES = tuple(field.name for field in dataclasses.fields(CallRecord))

CallObserver = Callable[[CallRecord], None]
