"""The transcript a pipeline produces and every formatter consumes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from whisperx_api.domain.breaks import spaces_words


class Task(StrEnum):
    """What the model was asked to do."""

    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


@dataclass(frozen=True, slots=True)
class Word:
    """One word with its time span in seconds; text keeps Whisper's leading space."""

    text: str
    start: float
    end: float
    score: float | None = None
    speaker: str | None = None
    probability: float | None = None  # the decoder's, kept when an aligner rescores `score`
    channel: int | None = None  # the audio channel it was heard on (multichannel only)


@dataclass(frozen=True, slots=True)
class Segment:
    """One decoded segment, with the decoder statistics OpenAI's schema reports."""

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    language: str | None = None  # the language it was decoded in; None = the transcript's
    channel: int | None = None  # the audio channel it was heard on (multichannel only)


class WarningCode(StrEnum):
    """What the server removed from a transcript, or doubts in it."""

    REPETITION_REMOVED = "repetition_removed"
    HALLUCINATION_REMOVED = "hallucination_removed"
    LOW_CONFIDENCE = "low_confidence"
    LANGUAGE_SWITCH = "language_switch"
    CHANNEL_SKIPPED = "channel_skipped"


@dataclass(frozen=True, slots=True)
class TranscriptWarning:
    """One thing a reader of the transcript should know, over a time span in seconds."""

    code: WarningCode
    message: str
    start: float
    end: float


def join_texts(texts: Iterable[str], separator: str = " ") -> str:
    """Texts stripped and joined with single spaces (or `separator`), empty ones left out."""
    return separator.join(stripped for text in texts if (stripped := text.strip()))


@dataclass(frozen=True, slots=True)
class Transcript:
    """A whole result: segments in time order plus what was detected about the audio."""

    task: Task
    language: str
    duration: float
    segments: tuple[Segment, ...]
    language_probability: float | None = None
    speaker_embeddings: dict[str, tuple[float, ...]] = field(default_factory=dict)
    warnings: tuple[TranscriptWarning, ...] = ()

    @property
    def text(self) -> str:
        """Segment texts joined with single spaces, as OpenAI's `json` format has it (with
        nothing between them in scripts that do not space words)."""
        separator = " " if spaces_words(self.language) else ""
        return join_texts((s.text for s in self.segments), separator)

    @property
    def words(self) -> tuple[Word, ...]:
        """Every word of every segment, in order."""
        return tuple(w for s in self.segments for w in s.words)

    @property
    def has_speakers(self) -> bool:
        """True when any segment carries a speaker label."""
        return any(s.speaker is not None for s in self.segments)
