"""Subtitle cues shared by SRT and WebVTT: line shaping, cue timing, karaoke highlighting.

A cue never mixes two segments, so a speaker prefix always belongs to the words under it.
Without shaping options a segment is one cue on one line. With `max_line_width` its words
wrap greedily; with `max_line_count` as well, every `max_line_count` lines start a new cue,
and a cue cut from a segment takes its times from its own words (or, when the segment has no
word timings, from its share of the segment's characters). The speaker prefix counts towards
the width of the line it starts; markup (`<u>`, escapes) does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise

from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Segment, Transcript, Word
from whisperx_api.formatters.plain import spoken
from whisperx_api.formatters.timestamps import milliseconds

Escape = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle on screen: a time span and its text, lines separated by `\\n`."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class _Token:
    """A word as laid out on a line; `spaced` says whether a space separates it from the last."""

    text: str
    spaced: bool
    start: float | None = None
    end: float | None = None


_Line = tuple[_Token, ...]
_Block = tuple[_Line, ...]
_Timed = tuple[_Token, float, float]


def speaker_prefix(speaker: str | None) -> str:
    """`[SPEAKER_00]: ` in front of a diarized cue, nothing otherwise."""
    return f"[{speaker}]: " if speaker is not None else ""


def _unchanged(text: str) -> str:
    """SubRip has no escaping."""
    return text


def build_cues(
    transcript: Transcript, options: SubtitleOptions, escape: Escape = _unchanged
) -> tuple[Cue, ...]:
    """Every cue of the transcript in segment order; `escape` protects the format's markup."""
    segments = spoken(transcript.segments)
    return tuple(cue for s in segments for cue in _segment_cues(s, options, escape))


def _segment_cues(segment: Segment, options: SubtitleOptions, escape: Escape) -> Iterator[Cue]:
    """Shape one segment into cues, then time them (and highlight them when asked)."""
    prefix = speaker_prefix(segment.speaker)
    blocks = _shape(_tokens(segment), len(prefix), options)
    for block, (start, end) in zip(blocks, _block_spans(blocks, segment), strict=True):
        if options.highlight_words:
            yield from _karaoke(block, start, end, prefix, escape)
        else:
            yield Cue(start, end, _block_text(block, prefix, escape))


def _tokens(segment: Segment) -> tuple[_Token, ...]:
    """Timed word tokens when the segment has words, else the text split on whitespace."""
    from_words = _word_tokens(segment.words, segment.text)
    return from_words or tuple(_Token(part, spaced=True) for part in segment.text.split())


def _word_tokens(words: Sequence[Word], text: str) -> tuple[_Token, ...]:
    """Whisper's words carry their own leading space (Chinese and Japanese ones do not); an
    aligner that strips it leaves the segment text to say whether the language spaces words."""
    marked = any(w.text[:1].isspace() for w in words)
    spaced = not marked and any(c.isspace() for c in text.strip())
    return tuple(
        _Token(w.text.strip(), w.text[:1].isspace() or spaced, w.start, w.end)
        for w in words
        if w.text.strip()
    )


def _shape(
    tokens: Sequence[_Token], prefix_len: int, options: SubtitleOptions
) -> tuple[_Block, ...]:
    """Greedy wrap into lines of at most `max_line_width` (a longer word gets a line of its
    own), grouped into cues of at most `max_line_count` lines."""
    width, max_lines = options.max_line_width, options.max_line_count
    blocks: list[_Block] = []
    lines: list[_Line] = []
    line: list[_Token] = []
    used = prefix_len
    for token in tokens:
        extra = len(token.text) + (1 if token.spaced and line else 0)
        if line and width is not None and used + extra > width:
            lines.append(tuple(line))
            line = []
            if max_lines is not None and len(lines) >= max_lines:
                blocks.append(tuple(lines))
                lines = []
            used, extra = (0 if lines else prefix_len), len(token.text)
        line.append(token)
        used += extra
    if line:
        blocks.append((*lines, tuple(line)))
    return tuple(blocks)


def _flat(block: _Block) -> tuple[_Token, ...]:
    """A cue's tokens in reading order."""
    return tuple(token for line in block for token in line)


def _timed(tokens: Sequence[_Token]) -> list[_Timed] | None:
    """The tokens with their times, or None when any of them has no timing."""
    timed = [(t, t.start, t.end) for t in tokens if t.start is not None and t.end is not None]
    return timed if len(timed) == len(tokens) else None


def _block_spans(blocks: Sequence[_Block], segment: Segment) -> list[tuple[float, float]]:
    """A whole segment keeps its own times; pieces of one take their words' times."""
    if len(blocks) == 1:
        return [(segment.start, segment.end)]
    word_spans = [_timed(_flat(block)) for block in blocks]
    if all(word_spans):
        spans = [(timed[0][1], timed[-1][2]) for timed in word_spans if timed]
    else:
        spans = _proportional_spans(blocks, segment)
    return _monotonic(spans)


def _proportional_spans(blocks: Sequence[_Block], segment: Segment) -> list[tuple[float, float]]:
    """Without word timings, share the segment's time out by characters spoken."""
    sizes = [sum(len(t.text) for t in _flat(block)) for block in blocks]
    total, duration = sum(sizes), segment.end - segment.start
    edges = [segment.start + duration * done / total for done in accumulate(sizes, initial=0)]
    return list(pairwise(edges))


def _monotonic(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping word times must not make a cue start before the previous one ends."""
    fixed: list[tuple[float, float]] = []
    floor = spans[0][0] if spans else 0.0
    for start, end in spans:
        start = max(start, floor)
        floor = max(end, start)
        fixed.append((start, floor))
    return fixed


def _karaoke(block: _Block, start: float, end: float, prefix: str, escape: Escape) -> Iterator[Cue]:
    """WhisperX-style highlighting: one cue per word with that word in `<u>`, and the plain
    text over the gaps between words, so the text stays on screen for the whole span."""
    plain = _block_text(block, prefix, escape)
    timed = _timed(_flat(block))
    if timed is None:
        yield Cue(start, end, plain)
        return
    cursor = start
    for token, word_start, word_end in timed:
        if milliseconds(word_start) > milliseconds(cursor):
            yield Cue(cursor, word_start, plain)
            cursor = word_start
        if milliseconds(word_end) > milliseconds(cursor):
            yield Cue(cursor, word_end, _block_text(block, prefix, escape, token))
            cursor = word_end
    if milliseconds(end) > milliseconds(cursor):
        yield Cue(cursor, end, plain)


def _block_text(block: _Block, prefix: str, escape: Escape, highlight: _Token | None = None) -> str:
    """The cue text: prefix on the first line, lines joined by newlines."""
    lines = (
        "".join(_token_text(t, i, escape, highlight) for i, t in enumerate(line)) for line in block
    )
    return escape(prefix) + "\n".join(lines)


def _token_text(token: _Token, position: int, escape: Escape, highlight: _Token | None) -> str:
    """One word, underlined when it is the one being spoken."""
    text = escape(token.text)
    if token is highlight:
        text = f"<u>{text}</u>"
    return " " + text if position and token.spaced else text
