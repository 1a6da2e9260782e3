"""Lay speaker turns onto a transcript: every word, then every segment, gets a speaker.

A word takes the speaker whose turns overlap it the longest; a word no turn overlaps (it fell
into a pause) takes the nearest turn's speaker. A segment takes the speaker with the most word
time in it, or, without words, is matched against the turns like a word.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.speakers import Diarization
from whisperx_api.domain.transcript import Segment, Transcript, Word

# Gives zero-length words a say in their segment's vote.
_MIN_WORD_WEIGHT = 1e-3


class _Turns:
    """Turn spans as arrays, for vectorised overlap against one span at a time."""

    def __init__(self, diarization: Diarization) -> None:
        self.starts: npt.NDArray[np.float64] = np.array([t.start for t in diarization.turns])
        self.ends: npt.NDArray[np.float64] = np.array([t.end for t in diarization.turns])
        self.speakers = [t.speaker for t in diarization.turns]

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
    segments = tuple(_labelled(segment, turns) for segment in transcript.segments)
    return dataclasses.replace(transcript, segments=segments, speaker_embeddings=embeddings)


def _labelled(segment: Segment, turns: _Turns) -> Segment:
    words = tuple(
        dataclasses.replace(w, speaker=turns.speaker_for(w.start, w.end)) for w in segment.words
    )
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
