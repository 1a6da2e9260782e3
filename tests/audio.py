"""Small audio files made on the fly for tests that do not need speech."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16_000
DATA = Path(__file__).parent / "data"


def tone_wav(path: Path, seconds: float, freq: float = 440.0, rate: int = RATE) -> Path:
    """A sine tone as 16-bit mono PCM WAV."""
    frames = int(seconds * rate)
    samples = (int(8000 * math.sin(2 * math.pi * freq * n / rate)) for n in range(frames))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def tone_bytes(tmp_dir: Path, seconds: float, name: str = "tone.wav") -> bytes:
    """The bytes of a tone WAV."""
    return tone_wav(tmp_dir / name, seconds).read_bytes()
