"""One audit record per tool call: what was called, how it ended, and how long it took.

`server.WebTools` builds a `CallRecord` when a call ends (or is refused for its arguments) and
hands it to its observers: `log_call` here (the audit log line), the metrics (metrics.py) and
the trace span (telemetry.py). The record names the tool's URL *template*, never the resolved
URL, and every string in it has been through the call's `Redactor` before anyone sees it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..redaction import Redactor

__all__ = ["OUTCOMES", "CallObserver", "CallRecord", "log_call", "logger"]

logger = logging.getLogger("mcp_webtools.audit")

# The whole set, so that dashboards and alerts can rely on it (and metric labels stay bounded).
OUTCOMES = (
    "ok",  # the upstream answered 2xx
    "truncated",  # the upstream answered 2xx with more than maxResponseBytes: the client got the beginning, or an error
    "invalid_response",  # the upstream answered 2xx, but not as the tool can pass on (outputSchema, nesting): an error
    "http_error",  # the upstream answered, with another status (see `status`)
    "upstream_error",  # no HTTP answer: unreachable, connection lost, TLS, egress refused, request not sendable
    "timeout",  # the tool's timeout passed while waiting on the upstream
    "busy",  # no free slot: the queue was full, or the timeout passed while queued
    "invalid_arguments",  # refused before anything was sent
    "cancelled",  # the client cancelled the call or went away
    "shutdown",  # refused or cancelled because the server is shutting down
    "internal_error",  # a bug of ours
)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """How one tools/call ended. `status` is None when no HTTP answer came back."""

    tool: str
    method: str
    url_template: str
    outcome: str
    status: int | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    request_bytes: int = 0
    response_bytes: int = 0
    request_id: str | int | None = None

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


def log_call(record: CallRecord) -> None:
    """Log `record` (already redacted) as one INFO line on `mcp_webtools.audit`.

    The text is readable on its own; the JSON log format adds the same fields as structured keys.
    """
    if not logger.isEnabledFor(logging.INFO):
        return  # not logged at this level: skip building the line's fields
    status = "-" if record.status is None else str(record.status)
    logger.info(
        "call tool=%s method=%s url=%s outcome=%s status=%s attempts=%d duration_ms=%.1f "
        "request_bytes=%d response_bytes=%d request_id=%s",
        record.tool,
        record.method,
        record.url_template,
        record.outcome,
        status,
        record.attempts,
        record.duration_ms,
        record.request_bytes,
        record.response_bytes,
        "-" if record.request_id is None else record.request_id,
        extra={"event": "tool_call", **record.fields()},
    )
