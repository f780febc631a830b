"""When to try an upstream call again, and how long to wait first.

The rule that matters: a retry must never duplicate a side effect. Idempotent methods (GET, PUT,
DELETE) are retried on transient failures by default. POST and PATCH are retried only when the
tool opts in (`retryNonIdempotent`), and then every attempt of one call carries the same
`Idempotency-Key`, so the upstream can recognise the repeats. All waiting happens inside the
tool's overall deadline.

A `429` (like 502/503/504) is retried after its `Retry-After`; it also pauses the tool for every
caller until then (ratelimit.py), and any retry of the tool waits for the pause to end, whichever
call's 429 started it: the next attempts do not hammer a quota either.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["IDEMPOTENT_METHODS", "RETRYABLE_STATUSES", "RetryPolicy", "parse_retry_after"]

IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# RFC 9110 delta-seconds: ASCII digits only (`str.isdigit` also accepts "²", which float() refuses).
_DELTA_SECONDS = re.compile(r"[0-9]+")


class RetryPolicy(BaseModel):
    """A tool's `retry` settings, as written in its definition (camelCase keys)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)

    retries: int = Field(default=2, ge=0, le=10)
    backoff_seconds: float = Field(default=0.2, ge=0, le=60, alias="backoffSeconds")
    max_backoff_seconds: float = Field(default=2.0, ge=0, le=300, alias="maxBackoffSeconds")
    attempt_timeout_seconds: float | None = Field(default=None, gt=0, le=3600, alias="attemptTimeoutSeconds")
    retry_non_idempotent: bool = Field(default=False, alias="retryNonIdempotent")
    idempotency_header: str = Field(
        default="Idempotency-Key", pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", alias="idempotencyHeader"
    )

    def max_attempts(self, method: str) -> int:
        if method in IDEMPOTENT_METHODS or self.retry_non_idempotent:
            return 1 + self.retries
        return 1

    def needs_idempotency_key(self, method: str) -> bool:
        """POST/PATCH that may be sent more than once carry one key across all attempts."""
        return method not in IDEMPOTENT_METHODS and self.max_attempts(method) > 1

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based): full jitter, capped.

        The ceiling doubles per retry up to `maxBackoffSeconds`; the wait is uniform below it,
        so many callers that failed together do not come back together. Pass `rng` for a
        reproducible wait.
        """
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** min(retry - 1, 64))
        return (rng or random).uniform(0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or None if unreadable.

    An HTTP date has whole-second resolution, so the wait until it is rounded up: never retry
    before the moment the upstream named.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return float(max(0, math.ceil((when - (now or datetime.now(UTC))).total_seconds())))
