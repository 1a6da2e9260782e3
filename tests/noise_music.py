"""Deterministic non-speech: pink-ish noise under a sequence of piano-like chords, 16 kHz mono.

Made with numpy from a fixed seed, so a test can make as much as it needs instead of carrying
it as a file."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 16_000
# Triads (Hz) of C, A minor, F and G major, two seconds each, round and round.
CHORDS: tuple[tuple[float, ...], ...] = (
    (261.63, 329.63, 392.00),
    (220.00, 261.63, 329.63),
    (174.61, 220.00, 261.63),
    (196.00, 246.94, 293.66),
)
CHORD_SECONDS = 2.0


def noise_and_music(seconds: float, seed: int = 24) -> npt.NDArray[np.float32]:
    """`seconds` of noise (about -30 dBFS) under chords (peaks near -10 dBFS)."""
    rng = np.random.default_rng(seed)
    count = round(seconds * RATE)
    white = rng.standard_normal(count)
    # A one-pole low-pass tilts white noise towards the pink of room and street noise.
    tilted = np.empty(count)
    level = 0.0
    for start in range(0, count, RATE):
        block = white[start : start + RATE]
        out = np.empty(len(block))
        for i, value in enumerate(block):
            level = 0.97 * level + 0.03 * value
            out[i] = level
        tilted[start : start + len(block)] = out
    noise = 0.03 * tilted / max(float(np.abs(tilted).max()), 1e-9)
    t = np.arange(count) / RATE
    music = np.zeros(count)
    per_chord = round(CHORD_SECONDS * RATE)
    for start in range(0, count, per_chord):
        chord = CHORDS[(start // per_chord) % len(CHORDS)]
        span = t[start : start + per_chord] - t[start]
        envelope = np.exp(-1.5 * span)  # struck, then fading, like a piano
        for freq in chord:
            for harmonic, weight in ((1, 1.0), (2, 0.4), (3, 0.2)):
                music[start : start + per_chord] += (
                    weight * envelope * np.sin(2 * np.pi * freq * harmonic * span)
                )
    music *= 0.3 / max(float(np.abs(music).max()), 1e-9)
    return (noise + music).astype(np.float32)
