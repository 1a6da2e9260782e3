"""Hand-built transcripts for the formatter tests: no models, no audio."""

from __future__ import annotations

from whisperx_api.domain.transcript import Segment, Task, Transcript, Word


def words(*spans: tuple[str, float, float]) -> tuple[Word, ...]:
    """Words with Whisper's leading space, scored 0.9."""
    return tuple(Word(f" {text}", start, end, 0.9) for text, start, end in spans)


FIXED = Transcript(
    task=Task.TRANSCRIBE,
    language="fr",
    duration=3725.5,
    language_probability=0.98,
    segments=(
        Segment(
            0,
            0.0,
            2.5,
            " Bonjour à tous.",
            words=(
                Word(" Bonjour", 0.1, 0.6, 0.91),
                Word(" à", 0.7, 0.8),
                Word(" tous.", 0.9, 2.4, 0.75, "SPEAKER_00"),
            ),
            speaker="SPEAKER_00",
            tokens=(50364, 1, 2),
            avg_logprob=-0.25,
            compression_ratio=1.1,
            no_speech_prob=0.01,
        ),
        Segment(1, 3.0, 5.25, " Ça\tva\nbien ?", speaker="SPEAKER_01"),
        Segment(2, 3723.456, 3725.5, " Une heure plus tard."),
    ),
)
"""Two diarized segments (one with words, one with a tab and newline), one past an hour."""

PLAIN = Transcript(
    task=Task.TRANSCRIBE,
    language="en",
    duration=12.0,
    segments=(
        Segment(0, 0.0, 4.0, " The quick brown fox jumps over the lazy dog."),
        Segment(
            1, 4.5, 9.75, " Pack my box with five dozen liquor jugs, said the naïve café owner."
        ),
        Segment(2, 10.0, 11.0, "   "),
    ),
)
"""No words, no speakers, one empty segment."""

_FOX = words(
    ("The", 0.2, 0.4),
    ("quick", 0.45, 0.8),
    ("brown", 0.85, 1.2),
    ("fox", 1.3, 1.6),
    ("jumps", 1.7, 2.1),
    ("over", 2.15, 2.4),
    ("the", 2.45, 2.6),
    ("lazy", 2.7, 3.1),
    ("dog.", 3.15, 3.8),
)
_PACK = words(
    ("Pack", 4.6, 4.9),
    ("my", 5.0, 5.1),
    ("box", 5.2, 5.5),
    ("with", 5.6, 5.8),
    ("five", 5.9, 6.2),
    ("dozen", 6.3, 6.7),
    ("liquor", 6.8, 7.2),
    ("jugs,", 7.3, 7.7),
    ("said", 8.0, 8.2),
    ("the", 8.25, 8.4),
    ("naïve", 8.5, 8.9),
    ("café", 9.0, 9.3),
    ("owner.", 9.35, 9.7),
)
ALIGNED = Transcript(
    task=Task.TRANSCRIBE,
    language="en",
    duration=12.0,
    segments=(
        Segment(0, 0.0, 4.0, " The quick brown fox jumps over the lazy dog.", _FOX, "SPEAKER_00"),
        Segment(
            1,
            4.5,
            9.75,
            " Pack my box with five dozen liquor jugs, said the naïve café owner.",
            _PACK,
            "SPEAKER_01",
        ),
    ),
)
"""Word timings and speakers on every segment."""

LONG = Transcript(
    task=Task.TRANSCRIBE,
    language="en",
    duration=4000.0,
    segments=(
        Segment(0, 1.5, 3.0, " Before the hour."),
        Segment(1, 3599.9996, 3725.25, " Across an hour boundary, extraordinarily long."),
    ),
)
"""A segment that starts at a time which rounds up to exactly one hour."""

EMPTY = Transcript(task=Task.TRANSCRIBE, language="en", duration=0.0, segments=())

ALL = (FIXED, PLAIN, ALIGNED, LONG, EMPTY)
