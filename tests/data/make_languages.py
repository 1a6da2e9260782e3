"""Regenerate the mixed-language fixture: eight sentences alternating four languages.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_languages.py

Writes ``languages.flac`` and ``languages.json``. Requires the Debian packages ``espeak-ng`` and
``sox``. Each sentence is synthesised by espeak-ng in its language's voice, resampled to 16 kHz
mono 16-bit, trimmed of leading/trailing silence and peak-normalised; sentences are joined with
0.9 s of digital silence, the way speakers switching language in a meeting pause. The JSON lists
every sentence's language, exact start and end (seconds, to the sample) and text.
Deterministic for espeak-ng 1.51 and SoX 14.4.2.
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

GAP_S = 0.9
WPM = 130

# (ISO-639-1 code, espeak-ng voice, text written for this project). Chosen among candidates for
# what Whisper base reads correctly from espeak-ng when given the language: a sentence that it
# cannot read even alone (espeak-ng's German "Das Wetter ist heute sehr schön" comes out as
# "Asmetast Hoytner Schoen") would test the model, not the server.
SENTENCES: tuple[tuple[str, str, str], ...] = (
    ("en", "en-us", "Good morning, let us begin the meeting."),
    ("de", "de", "Das Buch liegt auf dem Tisch."),
    ("fr", "fr", "Je voudrais un café, s'il vous plaît."),
    ("es", "es", "Vamos a la playa mañana."),
    ("en", "en-us", "Please send me the report tomorrow."),
    ("de", "de", "Guten Tag, wie geht es Ihnen?"),
    ("fr", "fr", "Nous avons besoin de plus de temps."),
    ("es", "es", "La comida está muy rica."),
)


def synth(voice: str, text: str, dst: Path, tmp: Path) -> None:
    """Synthesise ``text`` as a trimmed, normalised 16 kHz mono 16-bit WAV."""
    raw = tmp / f"raw_{dst.name}"
    run(["espeak-ng", "-v", voice, "-s", str(WPM), "-w", raw, text])
    run([*SOX, raw, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", dst, *TRIM_AND_NORM])


def main() -> None:
    """Write the recording and its sentences."""
    pcm = bytearray(silence(LEAD_S))
    sentences = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for index, (language, voice, text) in enumerate(SENTENCES):
            if index:
                pcm += silence(GAP_S)
            part = tmp / f"languages_{index:02d}.wav"
            synth(voice, text, part, tmp)
            audio = read_pcm(part)
            start = seconds(bytes(pcm))
            sentences.append(
                {
                    "language": language,
                    "start": round(start, 3),
                    "end": round(start + seconds(audio), 3),
                    "text": text,
                }
            )
            pcm += audio
        pcm += silence(TAIL_S)
        joined = tmp / "languages.wav"
        with wave.open(str(joined), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(SAMPLE_BYTES)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(bytes(pcm))
        run([*SOX, joined, OUT_DIR / "languages.flac"])
    body = {"duration": round(seconds(bytes(pcm)), 3), "sentences": sentences}
    text = json.dumps(body, indent=1, ensure_ascii=False) + "\n"
    (OUT_DIR / "languages.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
