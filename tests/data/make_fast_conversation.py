"""Regenerate the fast-turns diarization fixture: a two-party call with short replies and overlap.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_fast_conversation.py

Writes ``fast2.flac`` + ``fast2.rttm``. Requires the Debian packages ``espeak-ng`` and ``sox``.
Each utterance is synthesised by espeak-ng at a natural rate, shifted in pitch by SoX (which
also moves the formants, so the two voices differ in timbre, not only in pitch), resampled to
16 kHz mono 16-bit, trimmed of leading/trailing silence and normalised to -6 dBFS. Utterances are
then laid on one timeline: each starts a scripted offset after the previous one ends, 100-300 ms
later, or up to 400 ms before it ends (an overlap: the two are summed). Reference turns span each
trimmed utterance exactly. Output is deterministic for espeak-ng 1.51 and SoX 14.4.2.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent
SAMPLE_RATE = 16_000
SAMPLE_BYTES = 2
LEAD_S = 0.5
TAIL_S = 0.5
SOX = ("sox", "-R", "-D", "-V1")
TRIM = (
    *("silence", "1", "0.02", "0.5%", "reverse"),
    *("silence", "1", "0.02", "0.5%", "reverse"),
    *("norm", "-6"),
)


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice, its rate in words a minute and a SoX pitch shift in cents."""

    name: str
    wpm: int
    cents: int


VOICES: dict[str, Voice] = {
    "maya": Voice("en-us+f2", 175, 150),
    "sam": Voice("en-gb-scotland+m3", 165, -250),
}

# (speaker, text, offset): offset is seconds from the end of the previous utterance to the start
# of this one; negative means the two overlap.
FAST2: tuple[tuple[str, str, float], ...] = (
    ("maya", "Hi Sam, thanks for calling back so quickly.", 0.0),
    ("sam", "No problem. I saw your message this morning.", 0.2),
    ("maya", "So the delivery for the new store did not arrive on Friday.", 0.15),
    ("sam", "Okay.", 0.2),
    ("maya", "And the driver says the address was wrong on the form.", 0.2),
    ("sam", "That is strange, I checked it myself last week.", -0.3),
    ("maya", "Yeah.", 0.1),
    ("sam", "Let me look it up while we talk.", 0.25),
    ("maya", "Sure, take your time.", 0.15),
    ("sam", "Here it is. The street number says forty two instead of twenty four.", 0.3),
    ("maya", "Oh no.", -0.2),
    ("sam", "Somebody swapped the digits when they typed it in.", 0.15),
    ("maya", "Can you send the truck again on Monday morning?", 0.2),
    ("sam", "Right.", 0.1),
    ("maya", "The manager opens the loading door at seven.", 0.2),
    ("sam", "Monday at seven works for us. I will fix the address now.", -0.25),
    ("maya", "Great, thank you so much.", 0.15),
    ("sam", "Mm-hm.", 0.1),
    ("maya", "I will tell the team that it is sorted.", 0.2),
    ("sam", "Perfect. Have a good weekend.", 0.2),
)


def run(cmd: Sequence[str | Path]) -> None:
    """Run a command, failing loudly."""
    subprocess.run([str(c) for c in cmd], check=True)


def synth(voice: Voice, text: str, dst: Path, tmp: Path) -> np.ndarray:
    """Synthesise ``text``; the trimmed 16 kHz samples as int32."""
    raw = tmp / f"raw_{dst.name}"
    run(["espeak-ng", "-v", voice.name, "-s", str(voice.wpm), "-w", raw, text])
    effects = ("pitch", str(voice.cents), "rate", str(SAMPLE_RATE))
    run([*SOX, raw, "-c", "1", "-b", "16", dst, *effects, *TRIM])
    with wave.open(str(dst), "rb") as wav:
        assert wav.getframerate() == SAMPLE_RATE
        assert wav.getsampwidth() == SAMPLE_BYTES
        frames = wav.readframes(wav.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.int32)


def rttm_line(uri: str, start: float, duration: float, speaker: str) -> str:
    """One RTTM SPEAKER record (NIST format, as pyannote.core reads it)."""
    return f"SPEAKER {uri} 1 {start:.3f} {duration:.3f} <NA> <NA> {speaker} <NA> <NA>"


def make(uri: str, turns: Sequence[tuple[str, str, float]], tmp: Path) -> None:
    """Write ``uri``.flac and ``uri``.rttm from the scripted turns."""
    placed: list[tuple[int, np.ndarray, str]] = []
    cursor = round(LEAD_S * SAMPLE_RATE)
    for i, (speaker, text, offset) in enumerate(turns):
        samples = synth(VOICES[speaker], text, tmp / f"{uri}_{i:02d}.wav", tmp)
        start = cursor + round(offset * SAMPLE_RATE) if i else cursor
        placed.append((start, samples, speaker))
        cursor = start + len(samples)
    mix = np.zeros(cursor + round(TAIL_S * SAMPLE_RATE), dtype=np.int32)
    lines = []
    for start, samples, speaker in placed:
        mix[start : start + len(samples)] += samples
        duration = len(samples) / SAMPLE_RATE
        lines.append(rttm_line(uri, start / SAMPLE_RATE, duration, speaker))
    pcm = np.clip(mix, -32768, 32767).astype("<i2").tobytes()
    joined = tmp / f"{uri}.wav"
    with wave.open(str(joined), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_BYTES)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
    run([*SOX, joined, OUT_DIR / f"{uri}.flac"])
    (OUT_DIR / f"{uri}.rttm").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    """Regenerate the fixture."""
    with tempfile.TemporaryDirectory() as name:
        make("fast2", FAST2, Path(name))


if __name__ == "__main__":
    main()
