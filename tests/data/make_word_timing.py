"""Regenerate the word-timing fixture: `word_timing.flac` and its exact truth `word_timing.json`.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_word_timing.py

Every word is synthesised on its own (espeak-ng or flite, per sentence), converted to 16 kHz
mono, and trimmed of its leading and trailing silence with an energy threshold (frames quieter
than ``TRIM_DB`` below the word's loudest frame). The trimmed words are then joined with known
gaps of digital silence: short ones (50-150 ms) inside a phrase and long ones (400-1200 ms) at
some word boundaries and between all sentences, so each true word start and end is known to the
sample. A faint, seeded white noise (about -74 dBFS) is added over the whole file so that an
aligner cannot rely on exact digital zeros. The truth is ``[{"word", "start", "end"}]`` in
seconds, rounded to the millisecond.

Needs the Debian packages ``espeak-ng`` (1.51), ``flite`` (2.2) and ``sox`` (14.4.2); the output
is deterministic for fixed tool versions (SoX runs without dither, in repeatable mode).
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

OUT_DIR = Path(__file__).resolve().parent
SAMPLE_RATE = 16_000
SOX = ("sox", "-R", "-D", "-V1")
ESPEAK_WPM = 150
TRIM_DB = 35.0
TRIM_FRAME = 80  # 5 ms
SHORT_GAP = (0.05, 0.15)
LONG_GAP = (0.4, 1.2)
LONG_GAP_SHARE = 0.25
EDGE_S = 0.5
NOISE_RMS = 0.0002
SEED = 20_240_611

# (engine, voice, sentence): engine is "espeak" (espeak-ng voice) or "flite" (flite voice).
SENTENCES: tuple[tuple[str, str, str], ...] = (
    ("espeak", "en-us", "The old house stood alone at the end of a quiet road."),
    ("flite", "slt", "Every morning she walked down to the river with her dog."),
    ("espeak", "en-us", "We should leave early, because the train will be very busy."),
    ("flite", "slt", "Please bring some bread, cheese and fresh fruit for lunch."),
    ("espeak", "en-us", "The children played in the garden until it was dark."),
    ("flite", "slt", "Thank you for your help with the kitchen yesterday."),
)

Samples = npt.NDArray[np.float32]


def run(cmd: Sequence[str | Path]) -> None:
    """Run a command, failing loudly."""
    subprocess.run([str(c) for c in cmd], check=True)


def read_wav(path: Path) -> Samples:
    """16-bit mono WAV -> float32 samples in [-1, 1]."""
    with wave.open(str(path), "rb") as src:
        data = src.readframes(src.getnframes())
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


def write_wav(path: Path, samples: Samples) -> None:
    """float32 samples -> 16-bit mono WAV at SAMPLE_RATE."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def synth_word(engine: str, voice: str, word: str, tmp: Path) -> Samples:
    """Synthesise one word and return it as 16 kHz mono samples."""
    raw = tmp / "raw.wav"
    pcm = tmp / "pcm.wav"
    if engine == "espeak":
        run(["espeak-ng", "-v", voice, "-s", str(ESPEAK_WPM), "-w", raw, word])
    else:
        run(["flite", "-voice", voice, "-t", word, "-o", raw])
    run([*SOX, raw, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", pcm])
    return read_wav(pcm)


def trim(samples: Samples) -> Samples:
    """Cut leading and trailing frames more than TRIM_DB below the loudest frame."""
    count = len(samples) // TRIM_FRAME
    frames = samples[: count * TRIM_FRAME].reshape(count, TRIM_FRAME)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - TRIM_DB)
    return samples[loud[0] * TRIM_FRAME : (loud[-1] + 1) * TRIM_FRAME]


def gap_after(rng: random.Random, last_in_sentence: bool) -> float:
    """A known pause: long between sentences and at some boundaries, short elsewhere."""
    low, high = LONG_GAP if last_in_sentence or rng.random() < LONG_GAP_SHARE else SHORT_GAP
    return round(rng.uniform(low, high), 3)


def build(tmp: Path) -> tuple[Samples, list[dict[str, float | str]]]:
    """Join every trimmed word with known gaps; return the samples and the exact truth."""
    rng = random.Random(SEED)
    parts: list[Samples] = [np.zeros(int(EDGE_S * SAMPLE_RATE), dtype=np.float32)]
    cursor = len(parts[0])
    truth: list[dict[str, float | str]] = []
    for engine, voice, sentence in SENTENCES:
        words = sentence.split()
        for i, word in enumerate(words):
            spoken = trim(synth_word(engine, voice, word.strip(".,"), tmp))
            truth.append(
                {
                    "word": word,
                    "start": round(cursor / SAMPLE_RATE, 3),
                    "end": round((cursor + len(spoken)) / SAMPLE_RATE, 3),
                }
            )
            gap = np.zeros(int(gap_after(rng, i == len(words) - 1) * SAMPLE_RATE), np.float32)
            parts += [spoken, gap]
            cursor += len(spoken) + len(gap)
    parts[-1] = np.zeros(int(EDGE_S * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate(parts), truth


def add_noise(samples: Samples) -> Samples:
    """Faint seeded white noise, so silence is quiet rather than exactly zero."""
    noise = np.random.default_rng(SEED).normal(0.0, NOISE_RMS, len(samples))
    return (samples + noise).astype(np.float32)


def main() -> None:
    """Write word_timing.flac and word_timing.json beside this script."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        samples, truth = build(tmp)
        joined = tmp / "joined.wav"
        write_wav(joined, add_noise(samples))
        run([*SOX, joined, OUT_DIR / "word_timing.flac"])
    text = json.dumps(truth, indent=1) + "\n"
    (OUT_DIR / "word_timing.json").write_text(text, encoding="utf-8")
    print(f"{len(truth)} words, {len(samples) / SAMPLE_RATE:.2f} s")


if __name__ == "__main__":
    main()
