"""Sentence-like segments from aligned words, replacing the decoder's VAD chunks (up to 30 s).

A segment ends at a sentence end, at a pause between words, and where the speaker changes. A unit
still longer than a subtitle cue can show (`max_chars`, `max_seconds`) is cut again at its best
point: clause punctuation first, then the longest pause, keeping the halves balanced. Words may
flow across decoder segments, since those end wherever the voice detector cut the audio.

Decoder segments without words (transcribed without alignment), or whose words do not spell their
text, are kept as they are, so `Transcript.text` never changes beyond whitespace. A new segment
takes its decoder statistics from the decoder segment most of its text came from, and its share of
every decoder segment's tokens by characters, so the token lists still add up to the original.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from whisperx_api.domain.breaks import cut_score, ends_sentence, join_words, spaces_words
from whisperx_api.domain.transcript import Segment, Transcript, Word

FRAMES_PER_SECOND = 100
"""Whisper's `seek` unit: 10 ms mel frames."""


@dataclass(frozen=True, slots=True)
class SegmentRules:
    """Where segments end: pauses of `pause_seconds` or more, and length limits (a cue's)."""

    pause_seconds: float = 0.6
    max_chars: int = 84
    max_seconds: float = 7.0


@dataclass(frozen=True, slots=True)
class _Placed:
    """A word and where it came from: its decoder segment, and its character offset there."""

    word: Word
    source: int
    offset: int

    @property
    def size(self) -> int:
        return len(self.word.text)


_Unit = list[_Placed]


def resegment(transcript: Transcript, rules: SegmentRules | None = None) -> Transcript:
    """The transcript with sentence-like segments numbered 0..n-1; unchanged without words."""
    if not transcript.words:
        return transcript
    rules = rules or SegmentRules()
    spaced = spaces_words(transcript.language)
    sources = transcript.segments
    built: list[Segment] = []
    run: _Unit = []
    for index, segment in enumerate(sources):
        if _spelled_by_words(segment, spaced):
            run.extend(_placed(segment, index))
            continue
        built.extend(_segments(run, sources, rules, transcript.language))
        run = []
        built.append(segment)
    built.extend(_segments(run, sources, rules, transcript.language))
    numbered = tuple(dataclasses.replace(s, id=i) for i, s in enumerate(built))
    return dataclasses.replace(transcript, segments=numbered)


def _squashed(text: str) -> str:
    return "".join(text.split())


def _spelled_by_words(segment: Segment, spaced: bool) -> bool:
    """Only segments whose words spell their whole text can be rebuilt from words."""
    joined = join_words((w.text for w in segment.words), spaced)
    return bool(segment.words) and _squashed(joined) == _squashed(segment.text)


def _placed(segment: Segment, index: int) -> list[_Placed]:
    offsets = accumulate((len(w.text) for w in segment.words), initial=0)
    return [_Placed(w, index, o) for w, o in zip(segment.words, offsets, strict=False)]


def _segments(
    run: _Unit, sources: Sequence[Segment], rules: SegmentRules, language: str
) -> list[Segment]:
    if not run:
        return []
    spaced = spaces_words(language)
    return [
        _segment(piece, sources, spaced)
        for unit in _units(run, sources, rules)
        for piece in _fit(unit, rules, language)
    ]


def _units(run: _Unit, sources: Sequence[Segment], rules: SegmentRules) -> list[_Unit]:
    """Cut at sentence ends, pauses, speaker changes (a word without a speaker is none) and
    where the language the decoder wrote in changes."""
    units: list[_Unit] = [[run[0]]]
    for placed in run[1:]:
        before = units[-1][-1]
        last = before.word
        word = placed.word
        if (
            ends_sentence(last.text, word.text)
            or word.start - last.end >= rules.pause_seconds
            or _new_speaker(last, word)
            or sources[placed.source].language != sources[before.source].language
        ):
            units.append([])
        units[-1].append(placed)
    return units


def _new_speaker(last: Word, word: Word) -> bool:
    known = last.speaker is not None and word.speaker is not None
    return known and last.speaker != word.speaker


def _chars(unit: _Unit) -> int:
    return len(" ".join(p.word.text.strip() for p in unit))


def _seconds(unit: _Unit) -> float:
    return max(p.word.end for p in unit) - min(p.word.start for p in unit)


def _fit(unit: _Unit, rules: SegmentRules, language: str) -> list[_Unit]:
    """Halve a unit at its best cut until every piece fits the limits (or is one word)."""
    if len(unit) == 1 or (_chars(unit) <= rules.max_chars and _seconds(unit) <= rules.max_seconds):
        return [unit]
    cut = best_cut([p.word for p in unit], language, rules.pause_seconds)
    return _fit(unit[:cut], rules, language) + _fit(unit[cut:], rules, language)


def best_cut(words: Sequence[Word], language: str, pause_seconds: float) -> int:
    """Index of the word to start the second half with (see `cut_score`)."""
    sizes = [len(w.text.strip()) + 1 for w in words]
    before = list(accumulate(sizes))
    total = before[-1]

    def score(cut: int) -> float:
        last, word = words[cut - 1], words[cut]
        gap = min(max(word.start - last.end, 0.0), pause_seconds)
        return cut_score(last.text, word.text, gap, before[cut - 1] / total, language)

    return max(range(1, len(words)), key=score)


def _segment(unit: _Unit, sources: Sequence[Segment], spaced: bool) -> Segment:
    words = tuple(p.word for p in unit)
    main = sources[_dominant(unit)]
    start = min(w.start for w in words)
    speaker = next((w.speaker for w in words if w.speaker is not None), main.speaker)
    return dataclasses.replace(
        main,
        start=start,
        end=max(w.end for w in words),
        text=join_words((w.text for w in words), spaced),
        words=words,
        speaker=speaker,
        seek=round(start * FRAMES_PER_SECOND),
        tokens=_tokens(unit, sources),
    )


def _dominant(unit: _Unit) -> int:
    """The decoder segment most of the unit's characters come from."""
    shares: dict[int, int] = {}
    for placed in unit:
        shares[placed.source] = shares.get(placed.source, 0) + placed.size
    return max(shares, key=lambda source: shares[source])


def _tokens(unit: _Unit, sources: Sequence[Segment]) -> tuple[int, ...]:
    """The unit's share of each decoder segment's tokens, in proportion to its characters."""
    tokens: list[int] = []
    first = 0
    for index, placed in enumerate(unit):
        last_of_source = index + 1 == len(unit) or unit[index + 1].source != placed.source
        if not last_of_source:
            continue
        source = sources[placed.source]
        size = sum(len(w.text) for w in source.words) or 1
        count = len(source.tokens)
        low = round(count * unit[first].offset / size)
        high = round(count * (placed.offset + placed.size) / size)
        tokens.extend(source.tokens[low:high])
        first = index + 1
    return tuple(tokens)
