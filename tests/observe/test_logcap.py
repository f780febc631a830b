"""`CappedLog`: at most N WARNING lines per window, the cap announced, the rest reported once.

The clock is the test's, so a window ends when the test says (the end-to-end cap over HTTP is in
test_http_app.py)."""

from __future__ import annotations

import logging

import pytest

from mcp_webtools.observe.logcap import CappedLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lines_past_the_cap_are_left_out_and_reported_when_the_window_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="test.logcap")
    clock = Clock()
    log = CappedLog(logging.getLogger("test.logcap"), "refusals", lines=3, window=60, clock=clock)
    for n in range(5):
        log.warning("refused %d", n, extra={"reason": "wrong"})
    clock.now += 59.9  # still the same window
    log.warning("refused %d", 5)
    assert caplog.messages == [
        "refused 0",
        "refused 1",
        "refused 2 (3 such lines within 60 s: more refusals are left out for now)",
    ]
    assert [getattr(r, "reason", None) for r in caplog.records] == ["wrong"] * 3
    clock.now += 0.1  # the window is over: what was left out is said, then logging goes on
    log.warning("refused %d", 6)
    assert caplog.messages[3:] == ["3 more refusals were not logged (at most 3 lines per 60 s)", "refused 6"]
    clock.now += 600  # a quiet window after a full one: nothing to report
    log.warning("refused %d", 7)
    assert caplog.messages[5:] == ["refused 7"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
