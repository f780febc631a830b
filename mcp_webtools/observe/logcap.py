"""A cap on WARNING lines that anyone on the network can cause.

Each refused login and each message that is not JSON-RPC is worth a log line: it is how an
operator sees a misconfigured client or someone guessing tokens. But a client can send thousands
a second, and every line lands on disk. `CappedLog` lets through at most `lines` per `window`
seconds; the line that reaches the cap says so, and the first line after the window reports how
many were left out (where metrics count them, they still count every one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CappedLog"]


class CappedLog:
    """WARNING lines on `logger`, at most `lines` per `window` seconds; `what` names them in the notes."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        lines: int = 20,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.lines = lines
        self.window = window
        self._clock = clock
        self._window_end = float("-inf")
        self._logged = 0
        self._left_out = 0

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        now = self._clock()
        if now >= self._window_end:
            if self._left_out:
                self.logger.warning(
                    "%d more %s were not logged (at most %s per %g s)",
                    self._left_out,
                    self.what,
                    self._lines(),
                    self.window,
                    extra={"event": "log_cap", "left_out": self._left_out},
                )
            self._window_end, self._logged, self._left_out = now + self.window, 0, 0
        if self._logged >= self.lines:
            self._left_out += 1
            return
        self._logged += 1
        if self._logged == self.lines:
            message += f" ({self._lines('such ')} within {self.window:g} s: more {self.what} are left out for now)"
        self.logger.warning(message, *args, **kwargs)

    def _lines(self, such: str = "") -> str:
        return f"1 {such}line" if self.lines == 1 else f"{self.lines} {such}lines"
