"""Turning repeated decodes of a growing turn into OpenAI's append-only `delta` events.

Each partial hypothesis is the whole turn so far, decoded again; its last word may be cut off
mid-word, so it is held back, unless the previous hypothesis said the same words up to and
including it (local agreement: a decoder that heard more audio and said it again will not change
it) and Whisper did not mark it as cut off ("Well...", "for-"). That lets a turn's first word out
as soon as two drafts agree on it, instead of once a second word is heard. Words past those
already sent go out as the next delta. A later hypothesis that revises words already sent cannot
take them back: the `completed` event carries the final decode of the whole turn, which is what a
client keeps.
"""

from __future__ import annotations

HOLD_BACK_WORDS = 1
CUT_OFF = ("...", "…", "-", "—")  # Whisper ends a word the audio cut off with these


class Captions:
    """What one item's deltas have said so far, in words."""

    def __init__(self) -> None:
        self._sent = 0
        self._previous: list[str] = []  # the last hypothesis' words, compared without case

    def partial(self, text: str) -> str:
        """The delta for a hypothesis of the turn so far ("" when nothing new is stable)."""
        words = text.split()
        keys = [_key(w) for w in words]
        agreed = 0
        for mine, theirs in zip(keys, self._previous, strict=False):
            if mine != theirs:
                break
            agreed += 1
        if words and words[-1].endswith(CUT_OFF):
            agreed = min(agreed, len(words) - 1)
        self._previous = keys
        return self._take(words[self._sent : max(len(words) - HOLD_BACK_WORDS, agreed)])

    def final(self, text: str) -> str:
        """The delta that completes the deltas with the final transcript's remaining words."""
        return self._take(text.split()[self._sent :])

    def _take(self, fresh: list[str]) -> str:
        if not fresh:
            return ""
        prefix = " " if self._sent else ""
        self._sent += len(fresh)
        return prefix + " ".join(fresh)


def _key(word: str) -> str:
    """What two hypotheses' words are compared on: letters and digits, without case."""
    return "".join(c for c in word.casefold() if c.isalnum())
