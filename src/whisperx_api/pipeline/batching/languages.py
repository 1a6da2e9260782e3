"""Which language each chunk (or piece of one) is decoded in, from Whisper's detection.

A chunk packs up to 30 s of speech, often several sentences, so one detection per chunk cannot
follow speakers who switch language. Measured on the bundled `base` model: a chunk in one
language reads as it with a probability of 0.93-0.99, but a chunk of sentences alternating
English, German, French and Spanish reads as English 0.45 / Latin 0.42. Whisper forced to one
language on such a chunk writes the first sentence and drops the rest. So an unsure chunk
(below `SURE`) is cut at its pauses and each piece is encoded and detected by itself; a piece is
decoded in its own language when that detection is confident (`CONFIDENT`), else in the file's.

A slice of the chunk's own encoder output is no substitute: the decoder, shown a few seconds of
frames from a window that held other speech, reads most pieces as English or Welsh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from whisperx_api.domain.audio import SAMPLE_RATE

SURE = 0.8
"""A chunk detected with this probability or more is decoded whole in that language."""

CONFIDENT = 0.5
"""A piece (or sure chunk) leaves the file's language only for one detected this confidently."""

MIN_PROBE_SECONDS = 1.5
"""Pieces shorter than this join their neighbours before detection: a word or two says little."""

MAX_GROUPS = 10
"""At most this many pieces per chunk, each one more encoder pass and one more decode: audio made
to look unsure everywhere costs at most 10 times a chunk's work, not 20 (30 s / 1.5 s)."""


@dataclass(frozen=True, slots=True)
class Detection:
    """Every language's probability for one stretch of audio, most likely first."""

    ranked: tuple[tuple[str, float], ...]

    def among(self, candidates: Sequence[str]) -> Detection:
        """The detection restricted to `candidates`, renormalised; unchanged when empty."""
        if not candidates:
            return self
        kept = [(language, p) for language, p in self.ranked if language in candidates]
        total = sum(p for _, p in kept)
        if not kept or total <= 0:
            return Detection(((candidates[0], 0.0),))
        return Detection(tuple((language, p / total) for language, p in kept))

    @property
    def top(self) -> tuple[str, float]:
        return self.ranked[0]

    def probability(self, language: str) -> float:
        return next((p for code, p in self.ranked if code == language), 0.0)


@dataclass(frozen=True, slots=True)
class LanguageChoice:
    """The language a stretch is decoded in, and the detector's probability for it."""

    language: str
    probability: float


def choose_chunk_language(detection: Detection, candidates: Sequence[str]) -> LanguageChoice | None:
    """A whole chunk's language when the detector is sure of it, else None: its pieces must
    then be checked one by one. Sure means the unrestricted favourite is at least `SURE` and a
    candidate: a chunk of several languages can look sure once the others are renormalised
    away. A sure chunk is decoded in its own language even when the file's is another."""
    language, probability = detection.top
    if probability < SURE or (candidates and language not in candidates):
        return None
    return LanguageChoice(language, probability)


def choose_piece_language(
    detection: Detection, candidates: Sequence[str], fallback: LanguageChoice
) -> LanguageChoice:
    """A piece's language: the most likely candidate when candidates are given (the caller
    vouched for them); otherwise the detected one if confident, else `fallback` (the file's
    language, or the chunk's while the file's is not known yet)."""
    language, probability = detection.among(candidates).top
    if candidates or probability >= CONFIDENT:
        return LanguageChoice(language, probability)
    return LanguageChoice(fallback.language, detection.probability(fallback.language))


Pieces = tuple[tuple[int, int], ...]


def probe_groups(pieces: Pieces) -> list[Pieces]:
    """A chunk's pieces (sample ranges) in order, grouped so that each group holds at least
    `MIN_PROBE_SECONDS` where the chunk allows, and there are at most `MAX_GROUPS`: the
    shortest group joins the neighbour it is closer to in time, as a clause after a comma
    stays with its sentence."""
    minimum = MIN_PROBE_SECONDS * SAMPLE_RATE
    groups = [[piece] for piece in pieces]

    def length(group: list[tuple[int, int]]) -> int:
        return sum(end - start for start, end in group)

    while len(groups) > 1:
        index = min(range(len(groups)), key=lambda i: length(groups[i]))
        if length(groups[index]) >= minimum and len(groups) <= MAX_GROUPS:
            break
        before = groups[index][0][0] - groups[index - 1][-1][1] if index > 0 else None
        after = groups[index + 1][0][0] - groups[index][-1][1] if index + 1 < len(groups) else None
        into = index - 1 if after is None or (before is not None and before <= after) else index + 1
        low, high = sorted((index, into))
        groups[low : high + 1] = [groups[low] + groups[high]]
    return [tuple(group) for group in groups]
