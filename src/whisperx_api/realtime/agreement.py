"""Local agreement: which words of a growing turn are final while it is still spoken.

Each partial decode reads the turn's unconfirmed tail (the audio after the last confirmed word)
and answers words with times. The words at the start of two successive hypotheses that agree
(compared without case or punctuation) are confirmed: a decoder that read more audio and said
the same thing again will not change its mind. The next decodes, the final one included, read
only the audio after them, prompted with the confirmed text, so a turn's final decode costs the
same however long the turn has run.

A hypothesis' last word is never confirmed (the audio may end inside it), nor any word in its
last `MARGIN_SECONDS` (Whisper hears a word best with some speech after it: two decodes that both
end just after a word may agree on the same mishearing of it). The tail starts halfway between
the last confirmed word and the next one, so a word's imprecise end time never cuts into either.
"""

from __future__ import annotations

from dataclasses import dataclass

from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.domain.transcript import Transcript, join_texts

PROMPT_WORDS = 60  # confirmed words a tail's decode is prompted with (Whisper reads ~224 tokens)
MARGIN_SECONDS = 1.0  # a word confirmed has at least this much audio after it
_REPEAT_SECONDS = 0.25  # a tail's first word this near the cut, same as the last confirmed: dropped


@dataclass(frozen=True, slots=True)
class TimedWord:
    """One word of a hypothesis; `start`/`end` in samples from the turn's start."""

    text: str
    start: int
    end: int

    @property
    def key(self) -> str:
        """What two hypotheses are compared on."""
        return "".join(c for c in self.text.casefold() if c.isalnum())


def hypothesis(transcript: Transcript, offset: int) -> list[TimedWord]:
    """The words of a decode of the turn's audio from sample `offset`, timed from the turn's
    start (none when the backend gave no word times)."""
    return [
        TimedWord(text, offset + round(w.start * SAMPLE_RATE), offset + round(w.end * SAMPLE_RATE))
        for segment in transcript.segments
        for w in segment.words
        if (text := w.text.strip())
    ]


class Agreement:
    """The confirmed words of one turn and the last hypothesis of what follows them."""

    def __init__(self) -> None:
        self.confirmed: list[TimedWord] = []
        self.cut = 0  # samples from the turn's start where the unconfirmed tail begins
        self._previous: list[TimedWord] = []

    @property
    def text(self) -> str:
        """The confirmed text."""
        return join_texts(w.text for w in self.confirmed)

    def prompt(self, prompt: str | None) -> str | None:
        """The prompt for a decode of the tail: the session's, then the confirmed words."""
        recent = join_texts(w.text for w in self.confirmed[-PROMPT_WORDS:])
        return join_texts([prompt or "", recent]) or None

    def tail_words(self, words: list[TimedWord]) -> list[TimedWord]:
        """`words` of a decode of the tail, less a first word that repeats the last confirmed
        one right at the cut (the decoder heard the end of it again)."""
        if (
            words
            and self.confirmed
            and words[0].key == self.confirmed[-1].key
            and words[0].start < self.cut + _REPEAT_SECONDS * SAMPLE_RATE
        ):
            return words[1:]
        return words

    def update(self, words: list[TimedWord], end: int) -> list[TimedWord]:
        """Take the hypothesis of a decode of the tail (from `cut` to sample `end` of the turn);
        the words it confirms."""
        words = self.tail_words(words)
        heard = sum(1 for w in words if w.end <= end - MARGIN_SECONDS * SAMPLE_RATE)
        agreed = 0
        limit = min(len(self._previous), len(words) - 1, heard)  # never the last word
        while agreed < limit and self._previous[agreed].key == words[agreed].key:
            agreed += 1
        newly = words[:agreed]
        if newly:
            self.confirmed.extend(newly)
            following = words[agreed]
            self.cut = max((newly[-1].end + following.start) // 2, newly[-1].end, self.cut)
        self._previous = words[agreed:]
        return newly

    def transcript(self, tail: str) -> str:
        """The whole turn's text: the confirmed words, then the final decode of the tail."""
        return join_texts([self.text, tail])
