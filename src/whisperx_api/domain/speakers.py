"""Who spoke when: the result of a diarization stage, before it is laid onto a transcript."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


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


REFERENCE_RATE = 16_000
"""Known-speaker references travel as 16 kHz mono 16-bit PCM."""


@dataclass(frozen=True, slots=True)
class KnownSpeaker:
    """A name and a few seconds of that voice (base64 PCM, kept out of reprs and logs)."""

    name: str
    pcm16: str = field(repr=False)

    @classmethod
    def from_samples(cls, name: str, samples: npt.NDArray[np.float32]) -> KnownSpeaker:
        """Pack float samples in [-1, 1] at 16 kHz."""
        pcm = np.clip(samples, -1.0, 1.0) * 32767.0
        return cls(name, base64.b64encode(pcm.astype("<i2").tobytes()).decode("ascii"))

    def samples(self) -> npt.NDArray[np.float32]:
        """The reference as float32 samples at 16 kHz."""
        pcm = np.frombuffer(base64.b64decode(self.pcm16), dtype="<i2")
        return (pcm.astype(np.float32) / 32767.0).astype(np.float32)


@dataclass(frozen=True, slots=True)
class KnownVoice:
    """A saved voice as a job carries it: a name and its stored embedding (no audio)."""

    name: str
    embedding: tuple[float, ...] = field(repr=False)
