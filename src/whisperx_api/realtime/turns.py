"""Server VAD: where turns start and stop, from one speech probability per VAD window.

Silero's own hysteresis: a window at or above `threshold` is speech; once speaking, only windows
below `threshold - 0.15` count as silence, and `silence_duration_ms` of it ends the turn (a
window back at `threshold` cancels the count). A turn starts `prefix_padding_ms` before its
first speech window (never before the previous turn's end) and ends where the silence was long
enough, so its audio carries the trailing silence, as OpenAI's `audio_end_ms` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.realtime.session_config import ServerVad

_NEGATIVE_OFFSET = 0.15


@dataclass(frozen=True, slots=True)
class Edge:
    """A turn boundary at `sample` (16 kHz samples since the session's first audio)."""

    kind: Literal["start", "stop"]
    sample: int
    silence_from: int | None = None  # a stop's: where the silence that ended the turn began


def ms_to_samples(ms: float) -> int:
    """Milliseconds as 16 kHz samples."""
    return round(ms * SAMPLE_RATE / 1000)


class TurnDetector:
    """Feeds on window probabilities in order; answers the turn edges they imply."""

    def __init__(self, vad: ServerVad, window: int, max_turn_samples: int) -> None:
        self._vad = vad
        self._window = window
        self._max_turn = max_turn_samples
        self._negative = max(vad.threshold - _NEGATIVE_OFFSET, 0.01)
        self._position = 0  # samples covered by the probabilities seen so far
        self._floor = 0  # a turn never starts before the previous one ended
        self.turn_start: int | None = None
        self._silence_from: int | None = None

    @property
    def window(self) -> int:
        """Samples per probability."""
        return self._window

    @property
    def hearing_silence(self) -> bool:
        """True while a turn's closing silence is being counted: it may be about to end."""
        return self._silence_from is not None

    @property
    def silence_start(self) -> int | None:
        """Where the silence being counted began (each silence has its own start)."""
        return self._silence_from

    @property
    def silent_samples(self) -> int:
        """How long the silence being counted has lasted so far (0 when none is)."""
        return 0 if self._silence_from is None else self._position - self._silence_from

    def feed(self, probabilities: list[float]) -> list[Edge]:
        """The edges found in the next windows."""
        edges: list[Edge] = []
        for probability in probabilities:
            start, self._position = self._position, self._position + self._window
            edges.extend(self._step(probability, start, self._position))
        return edges

    def _step(self, probability: float, start: int, end: int) -> list[Edge]:
        speech = probability >= self._vad.threshold
        if self.turn_start is None:
            if not speech:
                return []
            padded = max(start - ms_to_samples(self._vad.prefix_padding_ms), self._floor)
            self.turn_start = padded
            return [Edge("start", padded)]
        if speech:
            self._silence_from = None
        elif probability < self._negative and self._silence_from is None:
            self._silence_from = start
        silent_for = 0 if self._silence_from is None else end - self._silence_from
        if silent_for >= ms_to_samples(self._vad.silence_duration_ms):
            return [self._stop(end)]
        if end - self.turn_start >= self._max_turn:
            # Too long to wait for a pause: cut here; speech that goes on is a new turn.
            edges = [self._stop(end)]
            if self._silence_from is None:
                self.turn_start = end
                edges.append(Edge("start", end))
            return edges
        return []

    def _stop(self, end: int) -> Edge:
        edge = Edge("stop", end, self._silence_from)
        self.turn_start = None
        self._silence_from = None
        self._floor = end
        return edge
