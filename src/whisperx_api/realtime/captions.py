"""Turning repeated decodes of a growing turn into OpenAI's append-only `delta` events.

Each partial hypothesis is the whole turn so far, decoded again; its last word may be cut off
mid-word, so it is held back. Words past those already sent go out as the next delta. A later
hypothesis that revises words already sent cannot take them back: the `completed` event carries
the final decode of the whole turn, which is what a client keeps.
"""

from __future__ import annotations

HOLD_BACK_WORDS = 1


class Captions:
    """What one item's deltas have said so far, in words."""

    def __init__(self) -> None:
        self._sent = 0

    def partial(self, text: str) -> str:
        """The delta for a hypothesis of the turn so far ("" when nothing new is stable)."""
        words = text.split()
        return self._take(words[self._sent : max(len(words) - HOLD_BACK_WORDS, 0)])

    def final(self, text: str) -> str:
        """The delta that completes the deltas with the final transcript's remaining words."""
        return self._take(text.split()[self._sent :])

    def _take(self, fresh: list[str]) -> str:
        if not fresh:
            return ""
        prefix = " " if self._sent else ""
        self._sent += len(fresh)
        return prefix + " ".join(fresh)
