"""Clean-up a client asks for: find-and-replace and redaction of personal data.

It runs once, on the finished transcript, before the result is stored: every format (text,
segments, words, subtitles) is rendered from the same cleaned words, and the raw text is never
kept. A match may span several words (a phone number Whisper wrote as `555 123 4567`, a phrase);
those words become one word that keeps the span's start and end, so a caller can still bleep the
audio. Matching reads the words joined as the text reads, so a match may also cross a segment
boundary; the word then belongs to the segment it starts in.

Digits are found the way ASR writes them, not the way forms do: Whisper drops and merges digits,
so a card number is any run of 12 to 19 digits in card-like grouping (no checksum), a phone number
any run of 7 to 15 digits in phone-like grouping, and digits spelled as words (`five five five`)
count too. A run of more than 19 digits is redacted as a card number when cards are redacted
(a card merged with the expiry or code read after it). Streamed text is cleaned the same way,
holding back the last few words until they can no longer change (`stable_prefix`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from whisperx_api.domain.breaks import join_words, spaces_words
from whisperx_api.domain.transcript import Segment, Transcript, Word


class Redaction(StrEnum):
    """Kinds of personal data `redact[]` may name; each match becomes its `label`."""

    EMAIL = "email"
    PHONE = "phone"
    CARD_NUMBER = "card_number"
    IBAN = "iban"
    SSN = "ssn"

    @property
    def label(self) -> str:
        """What replaces a match: `[EMAIL]`, `[PHONE]`, `[CARD_NUMBER]`, `[IBAN]`, `[SSN]`."""
        return f"[{self.value.upper()}]"


@dataclass(frozen=True, slots=True)
class CleanupOptions:
    """`replacements` as (from, to) pairs (validated at the edge) and the kinds to redact."""

    replacements: tuple[tuple[str, str], ...] = ()
    redact: tuple[Redaction, ...] = ()

    @property
    def active(self) -> bool:
        """True when there is anything to do."""
        return bool(self.replacements or self.redact)


@dataclass(frozen=True, slots=True)
class _Match:
    """Characters `start..end` of the scanned text become `text`."""

    start: int
    end: int
    text: str


Finder = Callable[[str], list[_Match]]

# --- finding ---------------------------------------------------------------------------------

_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NUMBER_WORDS = {name: str(digit) for digit, name in enumerate(_DIGIT_NAMES)}
_CORE = re.compile(r"^(\W*)([A-Za-z]+)(\W*)$")
# Digit groups joined by what ASR writes between them: spaces, dashes, dots, slashes, brackets,
# or a comma and a space ("5, 5, 5"); a leading `+` for an international prefix. Not a comma
# without a space: "1,000,000" is an amount.
_DIGIT_RUN = re.compile(
    r"(?<![\w$€£¥@.])(?P<plus>\+\s?)?\(?\d+\)?(?:(?:[ \t./-]{1,3}|,\s{1,2})\(?\d+\)?)*(?![\w@])"
)
_EMAIL_WRITTEN = re.compile(r"(?<![\w.+-])[\w.+-]+\s?@\s?[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
_TLDS = "com|org|net|edu|gov|io|co|uk|de|fr|es|it|nl|eu|info|biz|us|ca|au"
_EMAIL_SPOKEN = re.compile(
    rf"(?<![\w.+-])[\w+-]+(?:(?:\.|\s+dot\s+|\s+underscore\s+)[\w+-]+)*"
    rf"\s+(?:at|@)\s+[\w-]+(?:(?:\.|\s+dot\s+)[\w-]+)*(?:\.|\s+dot\s+)(?:{_TLDS})\b",
    re.IGNORECASE,
)
# An address ASR garbled beyond an `@` ("jane dot miller at example dot com" heard as
# "janemiravethample.com"): a domain-like word a few words after "email" or "address".
_EMAIL_HEARD = re.compile(
    rf"\b(?:e-?mail|address)\b(?:\W+\w+){{0,4}}?\W+(?P<address>[\w.+-]+\.(?:{_TLDS}))\b",
    re.IGNORECASE,
)
# Country code, check digits, then 11-30 letters and digits, grouped in fours or not; letters in
# capitals only, so lower-case words after an IBAN are not swallowed.
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\s?\d{2}(?:\s?[A-Z0-9]){11,30}(?![\w])")
_DATE = re.compile(r"\d{1,2}([/.-])\d{1,2}\1\d{2}(?:\d{2})?|\d{4}([/.-])\d{1,2}\2\d{1,2}")
_CARD_DIGITS = (12, 19)
_PHONE_DIGITS = (7, 15)
_SSN_DIGITS = 9


def _digit_matches(text: str, kinds: frozenset[Redaction]) -> list[_Match]:
    found = []
    for match in _DIGIT_RUN.finditer(text):
        kind = _classify(match)
        if kind is not None and kind not in kinds:
            kind = _fallback(match, kinds)
        if kind is not None:
            found.append(_Match(match.start(), match.end(), kind.label))
    return found


def _groups(match: re.Match[str]) -> list[int]:
    return [len(g) for g in re.findall(r"\d+", match.group())]


def _classify(match: re.Match[str]) -> Redaction | None:
    """The most likely kind of a digit run, by its length and grouping; None below 7 digits
    and for dates (`05/12/1980`, `2024-05-01`)."""
    groups = _groups(match)
    digits = sum(groups)
    if digits < _PHONE_DIGITS[0] or _DATE.fullmatch(match.group()):
        return None
    if digits == _SSN_DIGITS and groups in ([3, 2, 4], [9]) and not match.group("plus"):
        return Redaction.SSN
    if digits >= _CARD_DIGITS[0] and not match.group("plus"):
        return Redaction.CARD_NUMBER
    return Redaction.PHONE if digits <= _PHONE_DIGITS[1] else Redaction.CARD_NUMBER


def _fallback(match: re.Match[str], kinds: frozenset[Redaction]) -> Redaction | None:
    """A run whose likeliest kind was not asked for may still be another kind that was."""
    digits = sum(_groups(match))
    if Redaction.PHONE in kinds and _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]:
        return Redaction.PHONE
    if Redaction.CARD_NUMBER in kinds and digits >= _CARD_DIGITS[0]:
        return Redaction.CARD_NUMBER
    return None


def _pattern_matches(pattern: re.Pattern[str], label: str) -> Finder:
    return lambda text: [_Match(m.start(), m.end(), label) for m in pattern.finditer(text)]


def _heard_email_matches(text: str) -> list[_Match]:
    label = Redaction.EMAIL.label
    return [
        _Match(m.start("address"), m.end("address"), label) for m in _EMAIL_HEARD.finditer(text)
    ]


def _iban_matches(text: str) -> list[_Match]:
    return [
        _Match(m.start(), m.end(), Redaction.IBAN.label)
        for m in _IBAN.finditer(text)
        if 15 <= len(re.sub(r"\s", "", m.group())) <= 34
    ]


def redaction_finder(kinds: Iterable[Redaction]) -> Finder:
    """Every match of the asked-for kinds in a text, overlaps not yet resolved."""
    wanted = frozenset(kinds)
    finders: list[Finder] = []
    if wanted & {Redaction.PHONE, Redaction.CARD_NUMBER, Redaction.SSN}:
        finders.append(lambda text: _digit_matches(text, wanted))
    if Redaction.EMAIL in wanted:
        finders.append(_pattern_matches(_EMAIL_WRITTEN, Redaction.EMAIL.label))
        finders.append(_pattern_matches(_EMAIL_SPOKEN, Redaction.EMAIL.label))
        finders.append(_heard_email_matches)
    if Redaction.IBAN in wanted:
        finders.append(_iban_matches)
    return lambda text: [m for finder in finders for m in finder(text)]


def _phrase_key(text: str) -> str:
    return " ".join(text.lower().split())


def replacement_finder(replacements: Sequence[tuple[str, str]]) -> Finder:
    """Whole words and phrases, case-insensitive, the longest first where several start at one
    place; any run of whitespace in the text matches a space in a phrase. Each phrase is a named
    group, so a match names its entry whatever case folding made it match."""
    table = {_phrase_key(source): target for source, target in replacements}
    phrases = sorted(table, key=len, reverse=True)
    targets = {f"p{i}": table[phrase] for i, phrase in enumerate(phrases)}
    alternatives = "|".join(rf"(?P<p{i}>{_spaced(phrase)})" for i, phrase in enumerate(phrases))
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

    def find(text: str) -> list[_Match]:
        return [
            _Match(m.start(), m.end(), targets[m.lastgroup or ""]) for m in pattern.finditer(text)
        ]

    return find


def _spaced(phrase: str) -> str:
    return r"\s+".join(re.escape(part) for part in phrase.split())


def _resolved(matches: list[_Match]) -> list[_Match]:
    """Non-overlapping matches: the earliest start wins, then the longest."""
    kept: list[_Match] = []
    for match in sorted(matches, key=lambda m: (m.start, -(m.end - m.start))):
        if not kept or match.start >= kept[-1].end:
            kept.append(match)
    return kept


# --- applying to words -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """Words joined as the text reads, with where each word's text lies in the result."""

    text: str
    spans: tuple[tuple[int, int], ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]


def _spelled(word: str, digits: bool) -> str:
    """The word as matching reads it: number words as digits when looking for digits."""
    if not digits:
        return word
    parts = _CORE.match(word.strip())
    if parts is None or parts.group(2).lower() not in _NUMBER_WORDS:
        return word
    lead = word[: len(word) - len(word.lstrip())]
    return lead + parts.group(1) + _NUMBER_WORDS[parts.group(2).lower()] + parts.group(3)


def _layout(texts: Sequence[str], spaced: bool) -> _Layout:
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    cursor = 0
    # As `join_words`: Whisper's words carry their own space (a word without one is glued to
    # the one before, ".com"); only words an aligner stripped are joined with spaces.
    glue = spaced and not any(t[:1].isspace() for t in texts)
    for index, text in enumerate(texts):
        if index and glue:
            pieces.append(" ")
            cursor += 1
        spans.append((cursor, cursor + len(text)))
        pieces.append(text)
        cursor += len(text)
    starts, ends = tuple(a for a, _ in spans), tuple(b for _, b in spans)
    return _Layout("".join(pieces), tuple(spans), starts, ends)


def _covered(layout: _Layout, match: _Match) -> range:
    """The indexes of the words a match touches (by bisection: a long transcript may hold
    thousands of matches)."""
    first = bisect.bisect_right(layout.ends, match.start)
    last = bisect.bisect_left(layout.starts, match.end) - 1
    return range(first, last + 1)


def _least(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _merged(
    words: Sequence[Word], texts: Sequence[str], layout: _Layout, match: _Match, covered: range
) -> Word:
    first, last = covered[0], covered[-1]
    head = texts[first][: max(0, match.start - layout.spans[first][0])]
    tail = texts[last][max(0, match.end - layout.spans[last][0]) :]
    if not match.text and not any(c.isalnum() for c in tail):
        tail = ""  # a word replaced by nothing takes its punctuation along ("Um, so" -> "so")
    if not head[:1].isspace() and words[first].text[:1].isspace():
        head = words[first].text[: len(words[first].text) - len(words[first].text.lstrip())] + head
    span = words[first : last + 1]
    return Word(
        text=head + match.text + tail,
        start=span[0].start,
        end=max(w.end for w in span),
        score=_least(w.score for w in span),
        speaker=span[0].speaker,
        probability=_least(w.probability for w in span),
        channel=span[0].channel,
    )


def apply_finder(
    words: Sequence[Word], find: Finder, spaced: bool, digits: bool = False
) -> list[tuple[int, Word]]:
    """The words after one pass of `find`, each with the index of the first word it came from;
    words whose text ends up blank (a phrase replaced by nothing) are dropped."""
    texts = [_spelled(w.text, digits) for w in words]
    layout = _layout(texts, spaced)
    out: list[tuple[int, Word]] = []
    index = 0
    for match in _resolved(find(layout.text)):
        covered = _covered(layout, match)
        if not covered or covered[0] < index:
            continue
        out.extend((i, words[i]) for i in range(index, covered[0]))
        out.append((covered[0], _merged(words, texts, layout, match, covered)))
        index = covered[-1] + 1
    out.extend((i, words[i]) for i in range(index, len(words)))
    return [(i, w) for i, w in out if w.text.strip()]


@dataclass(frozen=True, slots=True)
class Cleaner:
    """The passes one job asks for, compiled once: replacements, then redaction (so a
    replacement cannot bring personal data back)."""

    replacer: Finder | None
    redactor: Finder | None
    longest_phrase: int  # words in the longest `from` phrase

    @classmethod
    def build(cls, options: CleanupOptions) -> Cleaner:
        """Compile `options` (assumed valid)."""
        replacing = replacement_finder(options.replacements) if options.replacements else None
        redacting = redaction_finder(options.redact) if options.redact else None
        longest = max((len(src.split()) for src, _ in options.replacements), default=0)
        return cls(replacing, redacting, longest)

    def words(self, words: Sequence[Word], spaced: bool) -> list[tuple[int, Word]]:
        """Both passes over `words`; each result keeps the index of its first source word."""
        current = [(i, w) for i, w in enumerate(words)]
        for find, digits in ((self.replacer, False), (self.redactor, True)):
            if find is not None:
                done = apply_finder([w for _, w in current], find, spaced, digits)
                current = [(current[j][0], w) for j, w in done]
        return current

    def text(self, text: str, spaced: bool = True) -> str:
        """A plain text cleaned like words (for segments without words, and streaming)."""
        pieces = re.findall(r"\s*\S+", text)
        trailing = text[len("".join(pieces)) :]
        cleaned = self.words([Word(p, 0.0, 0.0) for p in pieces], spaced)
        return "".join(w.text for _, w in cleaned) + trailing


def clean_transcript(transcript: Transcript, options: CleanupOptions) -> Transcript:
    """The transcript with `options` applied to every segment's words and text, read as one
    stream of words (a segment without words, or whose words do not spell its text, takes
    part through its text cut at spaces), and to the messages of its warnings."""
    if not options.active:
        return transcript
    cleaner = Cleaner.build(options)
    spaced = spaces_words(transcript.language)
    sources = [_source_words(s, spaced) for s in transcript.segments]
    owners = [i for i, words in enumerate(sources) for _ in words]
    placed: list[list[Word]] = [[] for _ in sources]
    for source, word in cleaner.words([w for words in sources for w in words], spaced):
        placed[owners[source]].append(word)
    segments = [
        _rebuilt(segment, words, placed[i], spaced)
        for i, (segment, words) in enumerate(zip(transcript.segments, sources, strict=True))
    ]
    kept = (s for s in segments if s is not None)
    # A warning may quote what it doubts or removed: cleaned like the text it quotes.
    warnings = tuple(replace(w, message=cleaner.text(w.message)) for w in transcript.warnings)
    return replace(
        transcript,
        segments=tuple(replace(s, id=i) for i, s in enumerate(kept)),
        warnings=warnings,
    )


def _source_words(segment: Segment, spaced: bool) -> tuple[Word, ...]:
    """The words matching reads for a segment: its own, or its text's pieces when they do not
    spell it (those pieces take the segment's times)."""
    joined = join_words((w.text for w in segment.words), spaced)
    if segment.words and "".join(joined.split()) == "".join(segment.text.split()):
        return segment.words
    pieces = re.findall(r"\s*\S+", segment.text)
    return tuple(Word(p, segment.start, segment.end) for p in pieces)


def _rebuilt(
    segment: Segment, before: tuple[Word, ...], after: list[Word], spaced: bool
) -> Segment | None:
    """A segment over its cleaned words; None when none are left. Tokens are dropped from a
    changed segment: they would spell what was replaced."""
    if tuple(after) == before:
        return segment
    if not after:
        return None
    return replace(
        segment,
        words=tuple(after) if before is segment.words else segment.words[:0],
        text=join_words((w.text for w in after), spaced),
        # A match that ran on from the segment before took this one's first words, or one
        # that ran on into the next took its last: the segment moves with its words.
        start=segment.start if after[0].start == before[0].start else after[0].start,
        end=segment.end if after[-1].end == before[-1].end else after[-1].end,
        tokens=(),
    )


# --- streaming -------------------------------------------------------------------------------

_CONNECTORS = frozenset({"at", "dot", "@", "underscore", "plus"})
_LABELS = frozenset(r.label for r in Redaction)


def _unsettled(word: str) -> bool:
    """A word that a later word could still turn into (part of) a match."""
    core = word.strip().strip(",.;:!?\"'()").lower()
    return (
        any(c.isdigit() for c in core)
        or "@" in core
        or "." in core
        or core in _NUMBER_WORDS
        or core in _CONNECTORS
        or word.strip().strip(",.;:!?") in _LABELS
    )


def stable_prefix(text: str, cleaner: Cleaner, spaced: bool = True) -> str:
    """The cleaned start of `text` that more text appended to it can no longer change.

    The last words are held back (as many as the longest phrase, at least three), and so are
    the digits, number words and address parts before them, with the word before an `at` or
    `dot`. The cut is made in the words as decoded, so it only moves forward as text grows;
    a phrase that starts before it is whole (it is no longer than the words held back).
    """
    pieces = re.findall(r"\s*\S+", text)
    cut = max(0, len(pieces) - max(3, cleaner.longest_phrase))
    while cut > 0 and (
        _unsettled(pieces[cut - 1])
        or (cut < len(pieces) and pieces[cut].strip().lower() in _CONNECTORS)
    ):
        cut -= 1
    cleaned = cleaner.words([Word(p, 0.0, 0.0) for p in pieces], spaced)
    return "".join(w.text for source, w in cleaned if source < cut)
