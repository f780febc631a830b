"""The two log formats: readable text (the default) and JSON lines for log pipelines.

A JSON line is one object per record: `time` (UTC, ISO 8601), `level`, `logger`, `message`,
then the record's structured fields (what was passed as `extra=`, e.g. the audit record's
`tool`, `outcome`, `status` ...), and `exception` when there is a traceback. Redaction happens
before formatting, in `redaction.RedactingFilter`, which redacts those fields too.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from ..redaction import record_fields

__all__ = ["LOG_FORMATS", "JsonLinesFormatter", "formatter_for"]

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            entry.setdefault(key, value)  # the four above win over a field of the same name
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter for `log_format` ("text" or "json"); `ValueError` for anything else."""
    if log_format == "json":
        return JsonLinesFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
