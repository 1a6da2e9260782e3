"""Regenerate the subtitle fixture: a narrated museum tour with known utterance times.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_narration.py

Writes ``narration.flac`` and ``narration.json``. Requires the Debian packages ``espeak-ng`` and
``sox``. Each utterance (one to three sentences, some long enough to need several subtitle cues)
is synthesised by espeak-ng in one of four voices and rates, resampled to 16 kHz mono 16-bit,
trimmed of leading/trailing silence and peak-normalised, then joined with gaps of digital
silence from 0.3 to 2 s. ``narration.json`` lists every utterance's exact start and end (in
seconds, to the sample) and its text. Deterministic for espeak-ng 1.51 and SoX 14.4.2.
"""

from __future__ import annotations

import json
import tempfile
import wave
from pathlib import Path

from make_conversation import (
    LEAD_S,
    OUT_DIR,
    SAMPLE_BYTES,
    SAMPLE_RATE,
    SOX,
    TAIL_S,
    TRIM_AND_NORM,
    read_pcm,
    run,
    seconds,
    silence,
)

# (espeak-ng voice, words per minute, silence before the utterance in seconds, text)
UTTERANCES: tuple[tuple[str, int, float, str], ...] = (
    ("en-us", 160, 0.0, "Welcome to the museum of natural history."),
    (
        "en-gb",
        170,
        0.9,
        "Our tour begins in the great hall, where the skeleton of a blue whale hangs from the "
        "ceiling, and then continues through the galleries of minerals, fossils and birds.",
    ),
    ("en-us+f3", 150, 0.4, "Please stay with the group."),
    (
        "en-us",
        175,
        1.5,
        "Photography is allowed, but the flash is not. Food and drink must stay in the cafe.",
    ),
    ("en-gb", 160, 0.3, "Are there any questions before we start?"),
    ("en-us+f3", 150, 2.0, "Then let us go."),
    (
        "en-us",
        165,
        0.7,
        "The whale was found on a beach in nineteen twenty nine, and it took the museum "
        "eleven years to clean, repair and mount every one of its bones.",
    ),
    ("en-gb", 155, 0.45, "Next, we will see the dinosaurs."),
    (
        "en-us+f3",
        170,
        1.2,
        "The largest of them was discovered by a farmer who was digging a well. "
        "He thought it was an old tree. It was not.",
    ),
    ("en-us", 160, 0.6, "Our tour ends in the garden at four o'clock."),
)


def synth(voice: str, wpm: int, text: str, dst: Path, tmp: Path) -> None:
    """Synthesise ``text`` as a trimmed, normalised 16 kHz mono 16-bit WAV."""
    raw = tmp / f"raw_{dst.name}"
    run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", raw, text])
    run([*SOX, raw, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", dst, *TRIM_AND_NORM])


def main() -> None:
    """Write the recording and its utterance times."""
    pcm = bytearray(silence(LEAD_S))
    utterances = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for index, (voice, wpm, gap, text) in enumerate(UTTERANCES):
            pcm += silence(gap)
            part = tmp / f"narration_{index:02d}.wav"
            synth(voice, wpm, text, part, tmp)
            audio = read_pcm(part)
            start = seconds(bytes(pcm))
            utterances.append(
                {"start": round(start, 3), "end": round(start + seconds(audio), 3), "text": text}
            )
            pcm += audio
        pcm += silence(TAIL_S)
        joined = tmp / "narration.wav"
        with wave.open(str(joined), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(SAMPLE_BYTES)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(bytes(pcm))
        run([*SOX, joined, OUT_DIR / "narration.flac"])
    body = {"duration": round(seconds(bytes(pcm)), 3), "utterances": utterances}
    (OUT_DIR / "narration.json").write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
