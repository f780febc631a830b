"""The console's Health page: rates and latencies read from the metrics the server already keeps.

Nothing is counted twice: a sampler reads the Prometheus registry of `metrics.Metrics` (calls by
outcome, the call-duration histogram, calls in flight) every `SAMPLE_SECONDS`, keeps the last
`KEEP` samples, and turns consecutive samples into the series the page draws, the way Prometheus'
`rate()` and `histogram_quantile()` would over the same windows.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio

from ...observe.metrics import DURATION_BUCKETS, Metrics

__all__ = ["HealthSampler", "quantile"]

SAMPLE_SECONDS = 2.0
KEEP = 300  # ten minutes of samples
RATE_WINDOW = 10.0  # calls per second: over the last 10 s
QUANTILE_WINDOW = 30.0  # error rate, p50 and p95: over the last 30 s (a shorter window is mostly empty)
# The series read, as metrics.py names them.
CALLS = "mcp_webtools_tool_calls_total"
DURATION_BUCKET = "mcp_webtools_tool_call_duration_seconds_bucket"
IN_FLIGHT = "mcp_webtools_calls_in_flight"


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # Unix time
    calls: float  # every call so far
    errors: float  # calls whose outcome is not `ok`
    buckets: tuple[float, ...]  # cumulative counts per `DURATION_BUCKETS` bound (then +Inf), all tools
    in_flight: float


class HealthSampler:
    """Samples `metrics` (and reads `in_flight`) on demand or every `SAMPLE_SECONDS` while running."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.clock = clock
        self.samples: deque[Sample] = deque(maxlen=KEEP)
        self.outcomes: dict[str, float] = {}  # calls so far by outcome, as of the last sample

    def sample(self) -> Sample:
        calls = errors = in_flight = 0.0
        outcomes: dict[str, float] = {}
        bounds = [*DURATION_BUCKETS, math.inf]
        buckets = [0.0] * len(bounds)
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                name, labels, value = sample.name, sample.labels, sample.value
                if name == CALLS:
                    calls += value
                    outcomes[labels["outcome"]] = outcomes.get(labels["outcome"], 0.0) + value
                    if labels["outcome"] != "ok":
                        errors += value
                elif name == DURATION_BUCKET:  # one series per tool: summed into one histogram
                    buckets[bounds.index(float(labels["le"]))] += value
                elif name == IN_FLIGHT:
                    in_flight = value
        sample = Sample(self.clock(), calls, errors, tuple(buckets), in_flight)
        self.samples.append(sample)
        self.outcomes = outcomes
        return sample

    def report(self) -> dict[str, Any]:
        """The series for the charts (oldest first) and the totals, after taking a fresh sample."""
        latest = self.sample()
        samples = list(self.samples)
        points = []
        for i, now in enumerate(samples):
            rate_from = _at_or_before(samples, i, now.at - RATE_WINDOW)
            window_from = _at_or_before(samples, i, now.at - QUANTILE_WINDOW)
            elapsed = now.at - rate_from.at
            calls = now.calls - window_from.calls
            deltas = [b - a for a, b in zip(window_from.buckets, now.buckets, strict=True)]
            points.append(
                {
                    "t": round(now.at, 3),
                    "calls_per_second": round((now.calls - rate_from.calls) / elapsed, 3) if elapsed > 0 else None,
                    "error_rate": round((now.errors - window_from.errors) / calls, 4) if calls > 0 else None,
                    "p50_ms": _ms(quantile(0.5, deltas)),
                    "p95_ms": _ms(quantile(0.95, deltas)),
                    "in_flight": now.in_flight,
                }
            )
        return {
            "sample_seconds": SAMPLE_SECONDS,
            "rate_window_seconds": RATE_WINDOW,
            "quantile_window_seconds": QUANTILE_WINDOW,
            "points": points,
            "totals": {"calls": latest.calls, "errors": latest.errors, "outcomes": dict(sorted(self.outcomes.items()))},
        }

    async def run(self) -> None:
        """Sample forever, `SAMPLE_SECONDS` apart, so the charts have a past when a page opens."""
        while True:
            self.sample()
            await anyio.sleep(SAMPLE_SECONDS)


def quantile(q: float, counts: Iterable[float]) -> float | None:
    """`histogram_quantile(q, ...)` in seconds, from cumulative counts per bound of
    `DURATION_BUCKETS` then +Inf (as Prometheus keeps them).

    Linear interpolation inside the bucket; a rank in the +Inf bucket gives the largest finite
    bound, as Prometheus does. None without observations.
    """
    cumulative = list(counts)
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(DURATION_BUCKETS, cumulative, strict=False):
        if count >= rank:
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = bound, count
    return DURATION_BUCKETS[-1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _at_or_before(samples: list[Sample], index: int, at: float) -> Sample:
    """The latest sample up to `index` taken at or before `at` (the oldest there is, if none)."""
    for j in range(index, -1, -1):
        if samples[j].at <= at:
            return samples[j]
    return samples[0]
