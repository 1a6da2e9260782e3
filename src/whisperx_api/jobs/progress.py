"""Job progress, written to a store at most once per interval (from the job's thread)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

ProgressWriter = Callable[[float, str | None], None]


class ThrottledProgress:
    """Keeps a job's latest fraction and text so far; hands both to `write` when a fraction
    comes at least `interval_seconds` after the last write (what came between rides along)."""

    def __init__(
        self,
        write: ProgressWriter,
        interval_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._interval = interval_seconds
        self._clock = clock
        self._last = -math.inf
        self._fraction = 0.0
        self._text: str | None = None

    def fraction(self, value: float) -> None:
        """The stage's 0..1 progress."""
        self._fraction = value
        self._maybe_write()

    def text(self, value: str) -> None:
        """The transcript text decoded so far; written with the next fraction."""
        self._text = value

    def _maybe_write(self) -> None:
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._write(self._fraction, self._text)
