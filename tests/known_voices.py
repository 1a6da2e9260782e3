"""Known-speaker evaluation on the conversation fixtures: RTTM truth, references cut from one
turn of each voice, and how much of the other speech time a labelling gets right."""

from __future__ import annotations

import base64
import io
import wave
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tests.audio import DATA
from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.speakers import Diarization
from whisperx_api.pipeline.stages.decode import decode_audio

MAX_REFERENCE = 10.0
MIN_REFERENCE = 2.0


@dataclass(frozen=True, slots=True)
class Turn:
    """One true turn from an RTTM file."""

    start: float
    end: float
    speaker: str

    @property
    def duration(self) -> float:
        return self.end - self.start


def truth(name: str) -> list[Turn]:
    """The RTTM turns of `tests/data/<name>.rttm`."""
    turns = []
    for line in (DATA / f"{name}.rttm").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        turns.append(Turn(start, start + duration, fields[7]))
    return turns


def audio(name: str) -> DecodedAudio:
    return decode_audio(DATA / f"{name}.flac", max_seconds=600)


def reference_turns(turns: list[Turn], pick: int = 0) -> dict[str, Turn]:
    """For each voice, its `pick`-th turn (by length, longest first) of at least 2 s."""
    by_voice: dict[str, list[Turn]] = defaultdict(list)
    for turn in turns:
        if turn.duration >= MIN_REFERENCE:
            by_voice[turn.speaker].append(turn)
    return {
        voice: sorted(options, key=lambda t: -t.duration)[pick % len(options)]
        for voice, options in by_voice.items()
    }


def cut(source: DecodedAudio, turn: Turn) -> npt.NDArray[np.float32]:
    """The samples of `turn`, at most 10 s (centred)."""
    length = min(turn.duration, MAX_REFERENCE - 0.05)
    start = turn.start + (turn.duration - length) / 2
    a, b = int(start * SAMPLE_RATE), int((start + length) * SAMPLE_RATE)
    return np.ascontiguousarray(source.samples[a:b])


def correctly_named(result: Diarization, turns: list[Turn], excluded: list[Turn]) -> float:
    """Share of true speech time (outside `excluded`) whose hypothesis label is the true name."""
    right = total = 0.0
    for turn in turns:
        if turn in excluded:
            continue
        total += turn.duration
        for hyp in result.turns:
            if hyp.speaker == turn.speaker:
                right += max(0.0, min(hyp.end, turn.end) - max(hyp.start, turn.start))
    return right / total if total else 0.0


def named_time(result: Diarization, name: str) -> float:
    """Seconds of hypothesis turns labelled `name`."""
    return sum(t.duration for t in result.turns if t.speaker == name)


def wav_data_url(samples: npt.NDArray[np.float32]) -> str:
    """16 kHz mono PCM16 WAV of `samples`, as a `data:audio/wav;base64,...` URL."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()
