"""Regenerate the billing-call fixture: `billing_call.flac` and its text `billing_call.txt`.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_billing_call.py

A short customer call to a billing line, two espeak-ng voices taking turns (an agent, `en-us`,
and a customer, `en-gb-x-rp+f3`), in which the customer reads out a card number, a phone
number and an email address digit by digit, as people do on the phone. Each turn is synthesised
whole, converted to 16 kHz mono, trimmed of its silence and followed by a seeded pause
(0.5-0.9 s). The names, numbers and address are invented (the card number is the well-known
test number 4111 1111 1111 1111; `example.com` is reserved for examples).

Needs the Debian packages `espeak-ng` (1.51) and `sox` (14.4.2); the output is deterministic for
fixed tool versions (SoX runs without dither, in repeatable mode).
"""

from __future__ import annotations

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
WPM = 150
PAUSE_S = (0.5, 0.9)
EDGE_S = 0.4
TRIM_DB = 40.0
SEED = 20_261_207
AGENT, CUSTOMER = "en-us", "en-gb-x-rp+f3"

# (voice, what is spoken, what it means as text); digits are spoken one by one.
TURNS: tuple[tuple[str, str, str], ...] = (
    (
        AGENT,
        "Thank you for calling Northwind billing. How can I help you today?",
        "Thank you for calling Northwind billing. How can I help you today?",
    ),
    (
        CUSTOMER,
        "Hello. I would like to pay my bill with a new card.",
        "Hello. I would like to pay my bill with a new card.",
    ),
    (AGENT, "Of course. What is the card number?", "Of course. What is the card number?"),
    (
        CUSTOMER,
        "The card number is 4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1.",
        "The card number is 4111 1111 1111 1111.",
    ),
    (
        AGENT,
        "Thank you. And a phone number where we can reach you?",
        "Thank you. And a phone number where we can reach you?",
    ),
    (
        CUSTOMER,
        "You can call me on 2 0 2, 5 5 5, 0 1 4 7.",
        "You can call me on 202 555 0147.",
    ),
    (
        AGENT,
        "Great. Where should we send the receipt?",
        "Great. Where should we send the receipt?",
    ),
    (
        CUSTOMER,
        "Please email it to jane dot miller at example dot com.",
        "Please email it to jane.miller@example.com.",
    ),
    (
        AGENT,
        "Done. Your payment is complete. Have a nice day.",
        "Done. Your payment is complete. Have a nice day.",
    ),
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


def speak(voice: str, text: str, tmp: Path) -> Samples:
    """One turn at 16 kHz mono, trimmed to where the voice is within TRIM_DB of its peak."""
    raw, wav = tmp / "raw.wav", tmp / "turn.wav"
    run(["espeak-ng", "-v", voice, "-s", str(WPM), "-w", raw, text])
    run([*SOX, raw, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", wav])
    samples = read_wav(wav)
    loud = np.flatnonzero(np.abs(samples) > np.abs(samples).max() * 10 ** (-TRIM_DB / 20))
    return samples[loud[0] : loud[-1] + 1]


def main() -> None:
    rng = random.Random(SEED)
    edge = np.zeros(int(EDGE_S * SAMPLE_RATE), dtype=np.float32)
    pieces: list[Samples] = [edge]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for voice, spoken, _ in TURNS:
            pieces.append(speak(voice, spoken, tmp))
            pause = rng.uniform(*PAUSE_S)
            pieces.append(np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32))
        pieces[-1] = edge
        wav = tmp / "call.wav"
        write_wav(wav, np.concatenate(pieces))
        run([*SOX, wav, OUT_DIR / "billing_call.flac"])
    text = " ".join(written for _, _, written in TURNS)
    (OUT_DIR / "billing_call.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
