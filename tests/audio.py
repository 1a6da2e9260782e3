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


def looped_flac(source: Path, target: Path, repeats: int) -> Path:
    """`source` played `repeats` times in a row, as 16-bit mono FLAC at 16 kHz: long real speech
    built with PyAV (no command-line tool), never committed."""
    import av
    import numpy as np

    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(str(source)) as container:
        frames = [out for frame in container.decode(audio=0) for out in resampler.resample(frame)]
    frames.extend(resampler.resample(None))
    pcm = np.concatenate([frame.to_ndarray() for frame in frames], axis=1)
    with av.open(str(target), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="mono")
        for _ in range(repeats):
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target
