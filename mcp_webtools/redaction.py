"""The one place that knows which values are secret, and hides them.

Everything the server shows a person or a model (logs, error texts, dry-run output, tool
listings) passes through a `Redactor` built from the loaded definitions.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Redactor", "RedactingFilter", "secret_header_values"]

MASK = "***"
# Shorter values cannot be hidden without mangling ordinary text ("1", "on"); they are not
# secrets worth the name, and the README says so.
MIN_SECRET_LENGTH = 4

# Headers whose configured values are plain protocol settings, not credentials.
NON_SECRET_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-language",
        "content-type",
        "user-agent",
    }
)


def secret_header_values(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The configured header values to treat as secrets (all but plain protocol headers)."""
    return [value for name, value in headers if name.lower() not in NON_SECRET_HEADERS]


class Redactor:
    """Replaces every known secret value, and its common encodings, with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_LENGTH:
                continue
            variants.add(secret)
            variants.add(quote(secret, safe=""))  # as it appears in a URL
            variants.add(json.dumps(secret)[1:-1])  # as it appears inside a JSON string
            scheme, _, credential = secret.partition(" ")
            if credential and len(credential) >= MIN_SECRET_LENGTH:
                variants.add(credential)  # "Bearer abc..." echoed back without its scheme
        self._secrets = frozenset(variants)
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def redact_json(self, value: object) -> object:
        """Redact every string inside a JSON-like value (keys included)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.redact_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_json(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from every record's final message.

    The redactor is looked up on each record, so a reload can swap it without touching handlers.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor:
            message = record.getMessage()
            record.msg = self.redactor(message)
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redactor(record.exc_text)
        return True
