"""Bounded exponential backoff for loops that must outlive the faults of what they call.

A worker loop whose store or broker fails keeps going, but waits longer after each failure in a
row (`base`, twice that, ... up to `cap`), so a persistent fault (a full disk, storage down) is
retried a few times a minute instead of in a tight loop; the first success resets it.
"""

from __future__ import annotations

import asyncio
import contextlib


class Backoff:
    """The delay before the next try, given the failures in a row so far."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self._base = base
        self._cap = cap
        self.failures = 0

    def failed(self) -> float:
        """Count one more failure in a row; the delay to wait before trying again."""
        self.failures += 1
        delay: float = self._base * 2.0 ** (self.failures - 1)
        return min(self._cap, delay)

    def succeeded(self) -> None:
        """The fault is gone: the next failure waits `base` again."""
        self.failures = 0


async def pause(seconds: float, stop: asyncio.Event) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
