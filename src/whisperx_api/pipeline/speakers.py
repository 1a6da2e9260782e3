"""Lay speaker turns onto a transcript: every word, then every segment, gets a speaker.

Each word is scored against every speaker by how much of it that speaker's turns cover (a word
no turn overlaps, fallen into a pause, counts as the nearest turn's). The words of the whole
transcript then get speakers in one pass (Viterbi) that pays for every word given to a speaker
who does not cover it, and pays `SWITCH_SECONDS` for a change of speaker between two words of
one phrase, where nobody stops: no sentence end and no pause of `PHRASE_GAP_SECONDS` between
them. Free changes at sentence ends keep a one-word reply ("Okay.") its own speaker's; the
price inside a phrase stops a sentence from being split between speakers where a diarizer's
turn boundary, a few hundred milliseconds off, cuts through it. A segment takes the speaker with
the most word time in it, or, without words, is matched against the turns like a word.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.breaks import ends_sentence
from whisperx_api.domain.speakers import Diarization
from whisperx_api.domain.transcript import Segment, Transcript, Word

# Gives zero-length words a say in their segment's vote.
_MIN_WORD_WEIGHT = 1e-3
SWITCH_SECONDS = 0.3
"""Word time a change of speaker inside a phrase costs: less evidence than this is outvoted."""
PHRASE_GAP_SECONDS = 0.25
"""A silence between two words at least this long ends a phrase, so a speaker may change there."""


class _Turns:
    """Turn spans as arrays, for vectorised overlap against one span at a time."""

    def __init__(self, diarization: Diarization) -> None:
        self.starts: npt.NDArray[np.float64] = np.array([t.start for t in diarization.turns])
        self.ends: npt.NDArray[np.float64] = np.array([t.end for t in diarization.turns])
        self.speakers = [t.speaker for t in diarization.turns]

    def cover(self, start: float, end: float) -> dict[str, float]:
        """Each speaker's share of [start, end], or the nearest turn's speaker in a pause."""
        overlap = np.maximum(np.minimum(self.ends, end) - np.maximum(self.starts, start), 0.0)
        if float(overlap.max()) <= 0:
            return {self.speaker_for(start, end): 1.0}
        shares: dict[str, float] = defaultdict(float)
        for index in np.flatnonzero(overlap > 0):
            shares[self.speakers[index]] += float(overlap[index])
        length = max(end - start, float(sum(shares.values())), _MIN_WORD_WEIGHT)
        return {speaker: share / length for speaker, share in shares.items()}

    def speaker_for(self, start: float, end: float) -> str:
        """The speaker overlapping [start, end] the longest (summed over turns), else nearest."""
        overlap = np.minimum(self.ends, end) - np.maximum(self.starts, start)
        if float(overlap.max()) > 0:
            return self._longest(np.maximum(overlap, 0.0))
        gap = np.maximum(self.starts - end, start - self.ends)
        return self.speakers[int(np.argmin(gap))]

    def _longest(self, overlap: npt.NDArray[np.float64]) -> str:
        totals: dict[str, float] = defaultdict(float)
        for index in np.flatnonzero(overlap > 0):
            totals[self.speakers[index]] += float(overlap[index])
        return max(totals, key=lambda speaker: totals[speaker])


def assign_speakers(transcript: Transcript, diarization: Diarization) -> Transcript:
    """A new transcript with `speaker` on words and segments, and the speaker embeddings."""
    embeddings = diarization.embeddings or transcript.speaker_embeddings
    if not diarization.turns:
        return dataclasses.replace(transcript, speaker_embeddings=embeddings)
    turns = _Turns(diarization)
    words = [w for segment in transcript.segments for w in segment.words]
    speakers = iter(word_speakers(words, turns))
    segments = tuple(_labelled(segment, turns, speakers) for segment in transcript.segments)
    return dataclasses.replace(transcript, segments=segments, speaker_embeddings=embeddings)


def word_speakers(words: Sequence[Word], turns: _Turns) -> list[str]:
    """One speaker per word, in order: the cheapest path (see the module docstring)."""
    if not words:
        return []
    names = list(dict.fromkeys(turns.speakers))
    costs = np.array([_costs(w, turns, names) for w in words])
    back = np.zeros(costs.shape, dtype=np.int64)
    total = costs[0].copy()
    for i in range(1, len(words)):
        switch = 0.0 if _phrase_ends(words[i - 1], words[i]) else SWITCH_SECONDS
        moves = total[:, None] + np.where(np.eye(len(names), dtype=bool), 0.0, switch)
        back[i] = np.argmin(moves, axis=0)
        total = moves[back[i], np.arange(len(names))] + costs[i]
    path = [int(np.argmin(total))]
    for i in range(len(words) - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return [names[k] for k in reversed(path)]


def _costs(word: Word, turns: _Turns, names: list[str]) -> list[float]:
    """Word time not covered by each speaker."""
    cover = turns.cover(word.start, word.end)
    weight = max(word.end - word.start, _MIN_WORD_WEIGHT)
    return [weight * (1.0 - cover.get(name, 0.0)) for name in names]


def _phrase_ends(last: Word, word: Word) -> bool:
    return ends_sentence(last.text, word.text) or word.start - last.end >= PHRASE_GAP_SECONDS


def _labelled(segment: Segment, turns: _Turns, speakers: Iterator[str]) -> Segment:
    words = tuple(dataclasses.replace(w, speaker=next(speakers)) for w in segment.words)
    speaker = _majority(words) if words else turns.speaker_for(segment.start, segment.end)
    return dataclasses.replace(segment, words=words, speaker=speaker)


def _majority(words: tuple[Word, ...]) -> str | None:
    """The speaker with the most word time; ties go to the one heard first."""
    weights: dict[str, float] = {}
    for word in words:
        if word.speaker is not None:
            weight = max(word.end - word.start, _MIN_WORD_WEIGHT)
            weights[word.speaker] = weights.get(word.speaker, 0.0) + weight
    if not weights:
        return None
    return max(weights, key=lambda speaker: weights[speaker])
