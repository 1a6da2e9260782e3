"""Regenerate the repetition-loop fixture: a sentence, then a murmur of voices with no words.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_loop.py

Writes ``loop.flac`` from three fixtures in this directory, with numpy and PyAV only: the fifth
recorded prompt of ``en_recorded.flac`` ("Thank you. Please hold while I attempt to connect you
with your party.", Allison Smith, CC-BY-SA-3.0) peak-normalised, 0.2 s of silence, then
``MURMUR_S`` seconds of two talkers played backwards at the same peak level (``narration.flac``
from 2 s on, and ``conv4.flac``): the sound of a room talking, which the voice detector takes
for speech and which holds no word to read. Whisper base, having written the sentence, writes
one made-up phrase over the murmur five times in a row ("I know you're in love with me." with
faster-whisper 1.2.1, int8 on CPU). Deterministic: no randomness, no external tool.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

OUT_DIR = Path(__file__).resolve().parent
RATE = 16_000
PEAK = 0.8
GAP_S = 0.2
MURMUR_S = 10.0
PROMPT = 4  # the fifth of the six prompts in en_recorded.flac
SILENCE_S = 0.3  # en_recorded's prompts are joined with 0.5 s of digital silence

Samples = npt.NDArray[np.float64]


def read(name: str | Path) -> Samples:
    """A file's samples (a name: a fixture in this directory), 16 kHz mono, in [-1, 1]."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(str(OUT_DIR / name)) as container:
        frames = [out for frame in container.decode(audio=0) for out in resampler.resample(frame)]
    frames.extend(resampler.resample(None))
    pcm = np.concatenate([frame.to_ndarray() for frame in frames], axis=1)[0]
    return pcm.astype(np.float64) / 32768.0


def prompts(samples: Samples) -> list[Samples]:
    """The recording's prompts: the stretches between runs of digital silence."""
    quiet = np.abs(samples) < 1e-4
    found: list[Samples] = []
    start: int | None = None
    run = 0
    for index, is_quiet in enumerate(quiet):
        if not is_quiet:
            start = index if start is None else start
            run = 0
            continue
        run += 1
        if start is not None and run >= SILENCE_S * RATE:
            found.append(samples[start : index - run + 1])
            start = None
    if start is not None:
        found.append(samples[start:])
    return found


def peak(samples: Samples) -> Samples:
    normalised: Samples = PEAK * samples / np.abs(samples).max()
    return normalised


def murmur(seconds: float) -> Samples:
    """Two talkers backwards, mixed: voices without words."""
    count = round(seconds * RATE)
    first = np.resize(read("narration.flac")[2 * RATE :], count)[::-1]
    second = np.resize(read("conv4.flac")[::-1], count)
    return peak(first + second)


def write_flac(path: Path, samples: Samples) -> None:
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main() -> None:
    sentence = peak(prompts(read("en_recorded.flac"))[PROMPT])
    gap = np.zeros(round(GAP_S * RATE))
    write_flac(OUT_DIR / "loop.flac", np.concatenate([sentence, gap, murmur(MURMUR_S)]))


if __name__ == "__main__":
    main()
