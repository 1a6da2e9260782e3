"""Whisper's known failure modes, removed or flagged, each reported as a warning.

- A repetition loop ("thank you thank you thank you ..."): the decoder, once it has written a
  phrase, keeps writing it. Three or more copies in a row of a phrase of up to `MAX_PHRASE`
  words become one copy (`repetition_removed`).
- A hallucination on non-speech: a segment the decoder itself doubts was speech (Whisper's own
  rule: no-speech probability over 0.6 with an average log probability under -1), or one of the
  phrases Whisper was trained to write over silence and music in subtitles ("Thank you for
  watching") written with little confidence, is dropped (`hallucination_removed`).
- The voice detector's disagreement: a segment over a span Silero heard (almost) no speech in
  is dropped when the decoder doubts it too (either half of Whisper's rule: two of the three
  signals agree), and otherwise kept and reported (`low_confidence`): Silero misses some real
  speech (whispers, singing, speech under loud music), which the decoder then reads confidently.
- Words the decoder gave a low probability are kept, and each run of them is reported
  (`low_confidence`), so a caller can mark or re-check them. So is text that still repeats
  itself once loops are cut (Whisper's compression-ratio rule: "1,5,5,5,5,5,...", "Yuiuiuiui"),
  which also counts as the decoder's doubt when the voice detector heard no speech.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Sequence

from whisperx_api.domain.breaks import join_words, spaces_words
from whisperx_api.domain.transcript import Segment, TranscriptWarning, WarningCode, Word

MAX_PHRASE = 20
"""The longest phrase (in words) looked for as a loop: base loops on whole sentences too ("We
will not be able to make any noise." seven times over a murmur)."""

MIN_COPIES = 3
MIN_LOOP_WORDS = 8
"""A loop is a phrase three or more times in a row, eight words or more in all: people say
"no, no, no" or "thank you, thank you"; the decoder's loops run on for dozens of words."""

SPOKEN_DIGITS = frozenset(
    [
        "zero",
        "oh",
        "o",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "double",
        "triple",
    ]
)
"""Read out digit by digit, a card or phone number repeats a "phrase" ("one one one one"):
numbers are never taken for a loop."""

NO_SPEECH = 0.6
LOW_LOGPROB = -1.0
"""Whisper's own thresholds: a segment over the first and under the second was not speech."""

DOUBTED_LOGPROB = -0.6
"""A known subtitle phrase is dropped only when written with less confidence than this."""

LOW_WORD_PROBABILITY = 0.35
"""Words under this probability are reported as `low_confidence`."""

REPETITIVE = 2.4
"""Whisper's compression-ratio threshold: text zlib shrinks more than this repeats itself
(Whisper then decodes again at a higher temperature; a batched decode has no second try)."""

MIN_SPEECH_SHARE = 0.1
"""A segment whose windows the voice detector called speech less than this share of the time is
one it heard (almost) no speech in."""

KNOWN_PHRASES: frozenset[str] = frozenset(
    {
        "thank you for watching",
        "thanks for watching",
        "please subscribe",
        "subscribe to my channel",
        "like and subscribe",
        "subtitles by the amara org community",
        "thank you for watching and see you next time",
        "untertitel der amara org community",
        "untertitel im auftrag des zdf",
        "sous titrage st' 501",
        "sous titres réalisés par la communauté d'amara org",
        "subtítulos realizados por la comunidad de amara org",
        "ご視聴ありがとうございました",
    }
)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def is_hallucination(segment: Segment) -> bool:
    """True for a segment the decoder wrote over what was most likely not speech."""
    if segment.no_speech_prob > NO_SPEECH and segment.avg_logprob < LOW_LOGPROB:
        return True
    known = _plain(segment.text) in KNOWN_PHRASES
    return known and (segment.avg_logprob < DOUBTED_LOGPROB or segment.no_speech_prob > NO_SPEECH)


def decoder_doubts(segment: Segment) -> bool:
    """Either half of Whisper's no-speech rule: the decoder thought the audio was not speech, or
    wrote the text with little confidence."""
    return segment.no_speech_prob > NO_SPEECH or segment.avg_logprob < LOW_LOGPROB


def compression_ratio(text: str) -> float:
    """How much zlib shrinks `text` (Whisper's measure of repetition); 0 for no text."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _numeric(token: str) -> bool:
    return not token or token.replace(" ", "").isdigit() or token in SPOKEN_DIGITS


def loop_span(tokens: Sequence[str]) -> tuple[int, int, int] | None:
    """The first loop in `tokens`: (start, phrase length, copies). Shorter phrases are tried
    first, so eight "no"s are one word eight times, not two words four times."""
    count = len(tokens)
    for start in range(count):
        for size in range(1, MAX_PHRASE + 1):
            phrase = tokens[start : start + size]
            if len(phrase) < size:
                break
            if all(_numeric(token) for token in phrase):
                continue
            copies = 1
            while tokens[start + copies * size : start + (copies + 1) * size] == phrase:
                copies += 1
            if copies >= MIN_COPIES and copies * size >= MIN_LOOP_WORDS:
                return start, size, copies
    return None


def collapse_loops(tokens: Sequence[str]) -> tuple[list[int], int]:
    """Indices of `tokens` to keep once every loop is one copy, and how many were dropped."""
    keep: list[int] = []
    dropped = 0
    index = 0
    normal = [_plain(t) for t in tokens]
    while index < len(tokens):
        found = loop_span(normal[index:])
        if found is None:
            keep.extend(range(index, len(tokens)))
            break
        start, size, copies = found
        keep.extend(range(index, index + start + size))
        dropped += (copies - 1) * size
        index += start + copies * size
    return keep, dropped


def _collapsed(segment: Segment, spaced: bool) -> tuple[Segment, int]:
    """The segment with its loops cut to one copy, and how many words went."""
    if segment.words:
        keep, dropped = collapse_loops([w.text for w in segment.words])
        if not dropped:
            return segment, 0
        words = tuple(segment.words[i] for i in keep)
        text = join_words((w.text for w in words), spaced)
        return dataclasses.replace(segment, words=words, text=text), dropped
    pieces = segment.text.split()
    keep, dropped = collapse_loops(pieces)
    if not dropped:
        return segment, 0
    return dataclasses.replace(segment, text=" ".join(pieces[i] for i in keep)), dropped


def clean_segment(
    segment: Segment, language: str, speech_share: float | None = None
) -> tuple[Segment | None, list[TranscriptWarning]]:
    """One decoded segment with its loops collapsed, or None when it is a hallucination; and
    the warnings saying so. Runs as each segment is decoded, so streamed text is clean too.

    `speech_share`: the share of the segment's span the voice detector called speech (None:
    not known, no disagreement to judge)."""
    warnings: list[TranscriptWarning] = []
    segment, dropped = _collapsed(segment, spaces_words(language))
    if dropped:
        warnings.append(
            TranscriptWarning(
                WarningCode.REPETITION_REMOVED,
                f"A repeated phrase was cut to one copy ({dropped} words removed).",
                segment.start,
                segment.end,
            )
        )
    unheard = speech_share is not None and speech_share < MIN_SPEECH_SHARE
    repetitive = compression_ratio(segment.text) > REPETITIVE
    doubted = decoder_doubts(segment) or repetitive
    if is_hallucination(segment) or (unheard and doubted):
        warnings.append(
            TranscriptWarning(
                WarningCode.HALLUCINATION_REMOVED,
                "Removed text the model most likely wrote over non-speech: "
                f"{segment.text.strip()!r}.",
                segment.start,
                segment.end,
            )
        )
        return None, warnings
    if unheard:
        warnings.append(
            TranscriptWarning(
                WarningCode.LOW_CONFIDENCE,
                f"The voice detector heard almost no speech under {segment.text.strip()!r}.",
                segment.start,
                segment.end,
            )
        )
    elif repetitive:
        warnings.append(
            TranscriptWarning(
                WarningCode.LOW_CONFIDENCE,
                f"The text repeats itself: {segment.text.strip()!r}.",
                segment.start,
                segment.end,
            )
        )
    return segment, warnings


def guard(
    segments: Sequence[Segment],
    language: str,
    speech_shares: Sequence[float | None] | None = None,
) -> tuple[tuple[Segment, ...], tuple[TranscriptWarning, ...]]:
    """Segments with loops collapsed and hallucinations dropped, renumbered, and the warnings
    saying so (plus the spans of low-confidence words, which stay). `speech_shares`, one per
    segment, are the voice detector's (see `clean_segment`)."""
    kept: list[Segment] = []
    warnings: list[TranscriptWarning] = []
    shares = speech_shares if speech_shares is not None else [None] * len(segments)
    for segment, share in zip(segments, shares, strict=True):
        cleaned, found = clean_segment(segment, segment.language or language, share)
        warnings.extend(found)
        if cleaned is not None:
            kept.append(cleaned)
    warnings.extend(low_confidence(kept))
    warnings.sort(key=lambda w: (w.start, w.end))
    numbered = tuple(dataclasses.replace(s, id=i) for i, s in enumerate(kept))
    return numbered, tuple(warnings)


def low_confidence(segments: Sequence[Segment]) -> list[TranscriptWarning]:
    """One warning per run of consecutive words under `LOW_WORD_PROBABILITY`."""
    warnings: list[TranscriptWarning] = []
    run: list[Word] = []
    for word in (*(w for s in segments for w in s.words), None):
        doubtful = word is not None and _probability(word) < LOW_WORD_PROBABILITY
        if doubtful and word is not None:
            run.append(word)
            continue
        if run:
            text = "".join(w.text for w in run).strip()
            warnings.append(
                TranscriptWarning(
                    WarningCode.LOW_CONFIDENCE,
                    f"The model is unsure of {text!r}.",
                    run[0].start,
                    run[-1].end,
                )
            )
            run = []
    return warnings


def _probability(word: Word) -> float:
    if word.probability is not None:
        return word.probability
    return word.score if word.score is not None else 1.0
