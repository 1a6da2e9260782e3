"""Job progress, written to a store at most once per interval (from the job's thread)."""

from __future__ import annotations

import time
from collections.abc import Callable


class ThrottledProgress:
    """Passes a fraction to `write` at most once per `interval_seconds`; drops the rest."""

    def __init__(self, write: Callable[[float], None], interval_seconds: float) -> None:
        self._write = write
        self._interval = interval_seconds
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._write(fraction)
