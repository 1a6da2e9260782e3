"""A long-turn recording, made at run time: real speech whose pauses are cut short.

Lectures, sermons and meetings rarely pause as long as a live session's turn-ending silence
(500 ms by default), so its VAD makes few, long turns of them. Joining recordings and shortening
every pause to `pause` seconds makes such speech from the fixtures, with numpy alone.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
from faster_whisper.audio import decode_audio

from tests.audio import DATA

RATE = 16_000
SOURCES = ("en_recorded.flac", "narration.flac", "conv2.flac")
_FRAME = 320  # 20 ms
_QUIET = 0.03  # a frame this far below the loud frames' level is a pause


def shorten_pauses(samples: npt.NDArray[np.float32], pause: float) -> npt.NDArray[np.float32]:
    """`samples` with every quiet stretch longer than `pause` s cut to `pause` s (its first and
    last halves kept, so words keep their fading ends)."""
    frames = len(samples) // _FRAME
    rms = np.sqrt(np.mean(samples[: frames * _FRAME].reshape(frames, _FRAME) ** 2, axis=1))
    quiet = rms < _QUIET * np.percentile(rms, 95)
    keep = np.ones(len(samples), dtype=bool)
    half = int(pause * RATE / 2)
    start = None
    for i, is_quiet in enumerate([*quiet.tolist(), False]):
        if is_quiet and start is None:
            start = i
        elif not is_quiet and start is not None:
            begin, end = start * _FRAME, i * _FRAME
            if end - begin > 2 * half:
                keep[begin + half : end - half] = False
            start = None
    return samples[keep]


def long_turn_audio(min_seconds: float = 60.0, pause: float = 0.25) -> npt.NDArray[np.float32]:
    """The fixtures' speech, pauses cut to `pause` s, joined until `min_seconds` long."""
    parts: list[npt.NDArray[np.float32]] = []
    total = 0
    while total < min_seconds * RATE:
        for name in SOURCES:
            part = shorten_pauses(decode_audio(str(DATA / name), sampling_rate=RATE), pause)
            parts.append(part)
            parts.append(np.zeros(int(pause * RATE), dtype=np.float32))
            total += len(part)
            if total >= min_seconds * RATE:
                break
    return np.concatenate(parts)


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> Path:
    """16-bit mono WAV at 16 kHz."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path
