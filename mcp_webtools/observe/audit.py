"""The audit log: one line per tool call, what was called, how it ended, and how long it took.

`calls.ToolCalls` builds a `CallRecord` (outcomes.py) when a call ends (or is refused for its
arguments) and hands it to the observers it was given at assembly (`serving/runtime.open_webtools`):
`log_call` here (the audit log line), the metrics (metrics.py) and the trace span (telemetry.py).
The record names the tool's URL *template*, never the resolved URL, and every string in it has
been through the call's `Redactor` before anyone sees it.
"""

from __future__ import annotations

import logging

from ..outcomes import CallRecord

__all__ = ["log_call", "logger"]

logger = logging.getLogger("mcp_webtools.audit")


def log_call(record: CallRecord) -> None:
    """Log `record` (already redacted) as one INFO line on `mcp_webtools.audit`.

    The text is readable on its own; the JSON log format adds the same fields as structured keys.
    """
    if not logger.isEnabledFor(logging.INFO):
        return  # not logged at this level: skip building the line's fields
    status = "-" if record.status is None else str(record.status)
    logger.info(
        "call tool=%s method=%s url=%s outcome=%s status=%s attempts=%d duration_ms=%.1f "
        "request_bytes=%d response_bytes=%d request_id=%s" + (" caller=%s" if record.caller is not None else ""),
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
        *(() if record.caller is None else (record.caller,)),
        extra={"event": "tool_call", **record.fields()},
    )
