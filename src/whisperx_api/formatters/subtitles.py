"""Subtitle cues shared by SRT and WebVTT: cue cuts, line breaks, timing, karaoke highlighting.

Defaults follow broadcast practice: at most 42 characters a line, 2 lines a cue, 7 s on screen,
and 20 characters a second of reading where the speech leaves time for it.

- A cue never spans two segments, so it never mixes speakers. A diarized cue starts with
  `[SPEAKER_00]: `, which counts towards the width of its first line; markup does not.
- A segment that does not fit one cue is cut at its best point (a sentence end, clause
  punctuation, a word opening a phrase, a pause; halves balanced), again until every piece fits.
- Lines are balanced, broken after punctuation or before a conjunction, preposition or article
  where that costs little balance, never inside a word; a word longer than the line has a line
  of its own. Scripts without spaces are measured and joined character by character.
- A cue lasts from its first word's start to its last word's end; a segment without word times
  shares its time out by characters. Cues are in time order and never overlap (overlapping
  speech cuts the earlier cue short), and a cue too brief to read at 20 characters a second is
  held on into the silence after it, up to the next cue.
- `highlight_words` turns each cue into one cue per word with that word underlined, and the
  plain text over the gaps between words (WhisperX's karaoke style).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise

from whisperx_api.domain.breaks import cut_score, ends_clause, spaces_words, starts_phrase
from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Segment, Transcript
from whisperx_api.formatters.plain import spoken
from whisperx_api.formatters.timestamps import milliseconds

Escape = Callable[[str], str]

DEFAULT_MAX_LINE_WIDTH = 42
DEFAULT_MAX_LINE_COUNT = 2
MAX_CUE_SECONDS = 7.0
MAX_CHARS_PER_SECOND = 20.0
_MIN_CUE_SECONDS = 0.1  # what overlapping speech leaves a cut-short cue at least
_MILLISECOND = 0.001
_PAUSE_CAP = 0.6  # pauses longer than this weigh no more when choosing a cut
_FITS_BONUS = 10.0  # a cut whose both halves fit beats any cut that needs more cues


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle on screen: a time span and its text, lines separated by `\\n`."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class _Token:
    """A word as laid out; `spaced`: a space separates it from the word before on its line."""

    text: str
    spaced: bool
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class _Layout:
    width: int
    lines: int
    words: int | None
    language: str


_Line = tuple[_Token, ...]


@dataclass(slots=True)
class _Draft:
    """A cue before its final times: lines, speaker prefix, span, and whether words are timed."""

    lines: tuple[_Line, ...]
    prefix: str
    start: float
    end: float
    timed: bool

    @property
    def tokens(self) -> tuple[_Token, ...]:
        return tuple(token for line in self.lines for token in line)

    @property
    def spoken_chars(self) -> int:
        return len(" ".join(_line_text(line, _unchanged) for line in self.lines))


def speaker_prefix(speaker: str | None) -> str:
    """`[SPEAKER_00]: ` in front of a diarized cue, nothing otherwise."""
    return f"[{speaker}]: " if speaker is not None else ""


def _unchanged(text: str) -> str:
    """SubRip has no escaping."""
    return text


def build_cues(
    transcript: Transcript, options: SubtitleOptions, escape: Escape = _unchanged
) -> tuple[Cue, ...]:
    """Every cue of the transcript in time order; `escape` protects the format's markup."""
    layout = _Layout(
        options.max_line_width or DEFAULT_MAX_LINE_WIDTH,
        options.max_line_count or DEFAULT_MAX_LINE_COUNT,
        options.max_words_per_line,
        transcript.language,
    )
    spaced = spaces_words(transcript.language)
    drafts = [
        draft
        for segment in spoken(transcript.segments)
        for draft in _drafts(segment, layout, spaced)
    ]
    _retime(drafts, transcript.duration)
    cues: list[Cue] = []
    for draft in drafts:
        if options.highlight_words and draft.timed:
            cues.extend(_karaoke(draft, escape))
        else:
            cues.append(Cue(draft.start, draft.end, _draft_text(draft, escape)))
    return tuple(cues)


def _drafts(segment: Segment, layout: _Layout, spaced: bool) -> list[_Draft]:
    """One segment's cues, each broken into lines."""
    prefix = speaker_prefix(segment.speaker)
    words = _word_tokens(segment, spaced)
    timed = bool(words)
    tokens = words or _text_tokens(segment, spaced)
    drafts = []
    for group in _groups(tokens, len(prefix), layout):
        start, end = group[0].start, max(t.end for t in group)
        drafts.append(_Draft(_break_lines(group, len(prefix), layout), prefix, start, end, timed))
    return drafts


def _word_tokens(segment: Segment, spaced: bool) -> tuple[_Token, ...]:
    """Whisper's words carry their own leading space (Chinese and Japanese ones do not); words
    an aligner stripped are spaced by the language's rule."""
    marked = any(w.text[:1].isspace() for w in segment.words)
    return tuple(
        _Token(w.text.strip(), w.text[:1].isspace() if marked else spaced, w.start, w.end)
        for w in segment.words
        if w.text.strip()
    )


# In a script without spaces, every character is a token, except runs of Latin letters/digits.
_SPACELESS_TOKEN = re.compile(r"(\s*)([0-9A-Za-z][0-9A-Za-z'’.,%-]*|\S)")


def _text_tokens(segment: Segment, spaced: bool) -> tuple[_Token, ...]:
    """Without word times: the words of the text, sharing the segment's time by characters."""
    if spaced:
        parts = [(part, True) for part in segment.text.split()]
    else:
        parts = [(m[2], bool(m[1])) for m in _SPACELESS_TOKEN.finditer(segment.text)]
    weights = list(accumulate((len(text) for text, _ in parts), initial=0))
    total = max(weights[-1], 1)
    span = segment.end - segment.start
    edges = [segment.start + span * done / total for done in weights]
    return tuple(
        _Token(text, space, start, end)
        for (text, space), (start, end) in zip(parts, pairwise(edges), strict=True)
    )


def _width(tokens: Sequence[_Token]) -> int:
    """Characters of the tokens on one line."""
    return sum(len(t.text) for t in tokens) + sum(1 for t in tokens[1:] if t.spaced)


def _line_fits(tokens: Sequence[_Token], indent: int, layout: _Layout) -> bool:
    """Within the width and word count; a lone word always fits."""
    if len(tokens) == 1:
        return True
    within = indent + _width(tokens) <= layout.width
    return within and (layout.words is None or len(tokens) <= layout.words)


def _line_count(tokens: Sequence[_Token], indent: int, layout: _Layout) -> int:
    """The fewest lines the tokens need (greedy filling is optimal for this)."""
    count, start = 1, 0
    for end in range(1, len(tokens) + 1):
        if not _line_fits(tokens[start:end], indent if count == 1 else 0, layout):
            count, start = count + 1, end - 1
    return count


def _seconds(tokens: Sequence[_Token]) -> float:
    return max(t.end for t in tokens) - tokens[0].start


def _fits(tokens: Sequence[_Token], indent: int, layout: _Layout) -> bool:
    return (
        _line_count(tokens, indent, layout) <= layout.lines and _seconds(tokens) <= MAX_CUE_SECONDS
    )


def _groups(tokens: Sequence[_Token], indent: int, layout: _Layout) -> list[Sequence[_Token]]:
    """Cut until every group fits one cue (a lone word always does)."""
    if len(tokens) <= 1 or _fits(tokens, indent, layout):
        return [tokens] if tokens else []
    sizes = list(accumulate(len(t.text) + 1 for t in tokens))

    def score(cut: int) -> float:
        before, after = tokens[cut - 1], tokens[cut]
        gap = min(max(after.start - before.end, 0.0), _PAUSE_CAP)
        both = _fits(tokens[:cut], indent, layout) and _fits(tokens[cut:], indent, layout)
        share = sizes[cut - 1] / sizes[-1]
        return _FITS_BONUS * both + cut_score(before.text, after.text, gap, share, layout.language)

    cut = max(range(1, len(tokens)), key=score)
    return _groups(tokens[:cut], indent, layout) + _groups(tokens[cut:], indent, layout)


def _break_lines(tokens: Sequence[_Token], indent: int, layout: _Layout) -> tuple[_Line, ...]:
    """The fewest lines, broken where the lines come out most even and the break most
    natural: after punctuation, else before a word that opens a phrase."""
    count = _line_count(tokens, indent, layout)
    if count == 1:
        return (tuple(tokens),)
    n = len(tokens)
    target = (indent + _width(tokens)) / count

    def line_cost(start: int, end: int, first: bool) -> float | None:
        line = tokens[start:end]
        shift = indent if first else 0
        if not _line_fits(line, shift, layout):
            return None
        balance = ((shift + _width(line) - target) / layout.width) ** 2
        if end == n:
            return 10.0 * balance
        natural = ends_clause(tokens[end - 1].text, tokens[end].text) + 0.5 * starts_phrase(
            tokens[end].text, layout.language
        )
        return 10.0 * balance - natural

    # best[k][j]: cheapest way to put tokens[:j] on k lines, and where its last line starts.
    best: list[dict[int, tuple[float, int]]] = [{0: (0.0, 0)}]
    for k in range(1, count + 1):
        row: dict[int, tuple[float, int]] = {}
        for end in range(k, n + 1):
            for start, (cost, _) in best[k - 1].items():
                if start >= end:
                    continue
                extra = line_cost(start, end, k == 1)
                if extra is not None and (end not in row or cost + extra < row[end][0]):
                    row[end] = (cost + extra, start)
        best.append(row)
    lines: list[_Line] = []
    end = n
    for k in range(count, 0, -1):
        start = best[k][end][1]
        lines.append(tuple(tokens[start:end]))
        end = start
    return tuple(reversed(lines))


def _retime(drafts: list[_Draft], duration: float) -> None:
    """Time order, no overlaps, and time enough to read where the silence after allows."""
    drafts.sort(key=lambda d: d.start)
    for current, following in pairwise(drafts):
        if following.start < current.end:
            current.end = max(following.start, current.start + _MIN_CUE_SECONDS)
            following.start = current.end
            following.end = max(following.end, following.start + _MIN_CUE_SECONDS)
    for index, draft in enumerate(drafts):
        needed = draft.spoken_chars / MAX_CHARS_PER_SECOND + _MILLISECOND  # survives rounding
        if draft.end - draft.start >= needed:
            continue
        limit = drafts[index + 1].start if index + 1 < len(drafts) else max(duration, draft.end)
        held = min(draft.start + needed, limit, draft.start + MAX_CUE_SECONDS)
        draft.end = max(draft.end, held)


def _karaoke(draft: _Draft, escape: Escape) -> Iterator[Cue]:
    """One cue per word with that word in `<u>`, and the plain text over the gaps between
    words, so the text stays on screen for the whole span."""
    plain = _draft_text(draft, escape)
    cursor = draft.start
    for token in draft.tokens:
        word_start = min(max(token.start, draft.start), draft.end)
        word_end = min(max(token.end, draft.start), draft.end)
        if milliseconds(word_start) > milliseconds(cursor):
            yield Cue(cursor, word_start, plain)
            cursor = word_start
        if milliseconds(word_end) > milliseconds(cursor):
            yield Cue(cursor, word_end, _draft_text(draft, escape, token))
            cursor = word_end
    if milliseconds(draft.end) > milliseconds(cursor):
        yield Cue(cursor, draft.end, plain)


def _draft_text(draft: _Draft, escape: Escape, highlight: _Token | None = None) -> str:
    """The cue text: prefix on the first line, lines joined by newlines."""
    lines = (_line_text(line, escape, highlight) for line in draft.lines)
    return escape(draft.prefix) + "\n".join(lines)


def _line_text(line: _Line, escape: Escape, highlight: _Token | None = None) -> str:
    parts = []
    for position, token in enumerate(line):
        text = escape(token.text)
        if token is highlight:
            text = f"<u>{text}</u>"
        parts.append(" " + text if position and token.spaced else text)
    return "".join(parts)
