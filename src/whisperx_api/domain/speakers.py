"""Who spoke when: the result of a diarization stage, before it is laid onto a transcript."""

from __future__ import annotations

from dataclasses import dataclass, field


def speaker_label(index: int) -> str:
    """The label of the `index`-th speaker (0-based, in order of first appearance)."""
    return f"SPEAKER_{index:02d}"


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    """One stretch of speech by one speaker, in seconds."""

    start: float
    end: float
    speaker: str

    @property
    def duration(self) -> float:
        """Length in seconds (never negative)."""
        return max(0.0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class Diarization:
    """Speaker turns in time order, plus one embedding vector per speaker when asked for."""

    turns: tuple[SpeakerTurn, ...]
    embeddings: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def speakers(self) -> tuple[str, ...]:
        """Distinct speaker labels, in order of first appearance."""
        return tuple(dict.fromkeys(t.speaker for t in self.turns))
