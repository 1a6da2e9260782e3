"""Regenerate the audio test fixtures in this directory (provenance documentation).

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_fixtures.py

Requires PyAV (mp3 encoding) and the Debian packages ``espeak-ng``, ``flite``, ``sox`` and
``asterisk-core-sounds-en-wav`` (recorded prompts by Allison Smith, CC-BY-SA-3.0). The reference
texts of the recorded prompts come from ``asterisk-core-sounds-en`` (``core-sounds-en.txt.gz``).
Output is deterministic for fixed tool versions (espeak-ng 1.51, flite 2.2, SoX 14.4.2): SoX
runs without dither and in repeatable mode.
"""

from __future__ import annotations

import gzip
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import av

OUT_DIR = Path(__file__).resolve().parent
SAMPLE_RATE = 16_000
GAP_S = 0.5
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")

# (engine, voice, text): engine is "espeak" (espeak-ng voice name) or "flite" (flite voice).
EN_SYNTH: tuple[tuple[str, str, str], ...] = (
    ("flite", "slt", "Good morning, and welcome to the weekly team meeting."),
    ("flite", "slt", "Today we will talk about the new project and the plans for next month."),
    ("espeak", "en-us", "Please remember to turn off the lights when you leave the office."),
    ("espeak", "en-us", "The weather was warm and sunny, so we had lunch in the park."),
    ("flite", "slt", "Thank you for listening, and have a nice day."),
)

# Asterisk prompt names (relative to ASTERISK_DIR, without ".wav"), in playback order.
EN_PROMPTS: tuple[str, ...] = (
    "followme/pls-hold-while-try",
    "queue-youarenext",
    "privacy-unident",
    "confbridge-lock-no-join",
    "priv-introsaved",
    "confbridge-only-participant",
)

# Chosen (and spoken slowly) so that Whisper base translates it well; base is fragile here.
FR_TEXT: tuple[str, ...] = (
    "Bonjour, je m'appelle Marie.",
    "J'habite à Paris avec ma famille.",
    "Mon frère est médecin.",
    "Merci beaucoup.",
)
FR_TEXT_EN: tuple[str, ...] = (
    "Hello, my name is Marie.",
    "I live in Paris with my family.",
    "My brother is a doctor.",
    "Thank you very much.",
)
EN_ESPEAK_WPM = 150
FR_ESPEAK_WPM = 120

# Sentences of EN_SYNTH that make up good_short.mp3 (about 6 s).
GOOD_SHORT_PARTS = (0, 4)
TRUNCATE_FRACTION = 0.3
MP3_KBPS = 32
SOX = ("sox", "-R", "-D", "-V1")


def run(cmd: Sequence[str | Path]) -> None:
    """Run a command, failing loudly."""
    subprocess.run([str(c) for c in cmd], check=True)


def to_pcm16k(src: Path, dst: Path) -> None:
    """Convert any audio file SoX can read to 16 kHz mono 16-bit WAV."""
    run([*SOX, src, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", dst])


def silence(dst: Path, seconds: float) -> None:
    """Write ``seconds`` of digital silence as 16 kHz mono 16-bit WAV."""
    run([*SOX, "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", dst, "trim", "0", f"{seconds}"])


def synth(
    engine: str, voice: str, text: str, dst: Path, tmp: Path, wpm: int = EN_ESPEAK_WPM
) -> None:
    """Synthesise ``text`` (espeak-ng at ``wpm`` words/min, or flite) as 16 kHz mono WAV."""
    raw = tmp / f"raw_{dst.name}"
    if engine == "espeak":
        run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", raw, text])
    elif engine == "flite":
        run(["flite", "-voice", voice, "-t", text, "-o", raw])
    else:
        raise ValueError(f"unknown engine {engine!r}")
    to_pcm16k(raw, dst)


def concat(parts: Sequence[Path], dst: Path, tmp: Path) -> None:
    """Join 16 kHz WAV parts with GAP_S of silence between them and write ``dst``."""
    gap = tmp / "gap.wav"
    silence(gap, GAP_S)
    joined: list[Path] = []
    for i, part in enumerate(parts):
        if i:
            joined.append(gap)
        joined.append(part)
    run([*SOX, *joined, dst])


def asterisk_texts() -> dict[str, str]:
    """Parse the prompt-name -> text table shipped with asterisk-core-sounds-en."""
    texts: dict[str, str] = {}
    with gzip.open(ASTERISK_TEXT, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(";") or ": " not in line:
                continue
            name, text = line.split(": ", 1)
            texts[name.strip()] = " ".join(text.split())
    return texts


def as_sentence(text: str) -> str:
    """Capitalise the first letter and add a final full stop if punctuation is missing."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def write_text(path: Path, sentences: Sequence[str]) -> None:
    """Write sentences as one line of UTF-8 text."""
    path.write_text(" ".join(sentences) + "\n", encoding="utf-8")


def make_en_espeak(tmp: Path) -> list[Path]:
    """Build en_espeak.flac/.txt from synthetic English voices; return the 16 kHz WAV parts."""
    parts: list[Path] = []
    for i, (engine, voice, text) in enumerate(EN_SYNTH):
        part = tmp / f"en_{i}.wav"
        synth(engine, voice, text, part, tmp)
        parts.append(part)
    concat(parts, OUT_DIR / "en_espeak.flac", tmp)
    write_text(OUT_DIR / "en_espeak.txt", [t for _, _, t in EN_SYNTH])
    return parts


def make_en_recorded(tmp: Path) -> None:
    """Build en_recorded.flac/.txt from recorded Asterisk prompts (CC-BY-SA-3.0)."""
    texts = asterisk_texts()
    parts: list[Path] = []
    for i, name in enumerate(EN_PROMPTS):
        part = tmp / f"rec_{i}.wav"
        to_pcm16k(ASTERISK_DIR / f"{name}.wav", part)
        parts.append(part)
    concat(parts, OUT_DIR / "en_recorded.flac", tmp)
    write_text(OUT_DIR / "en_recorded.txt", [as_sentence(texts[name]) for name in EN_PROMPTS])


def make_fr_espeak(tmp: Path) -> None:
    """Build fr_espeak.flac/.txt and the English reference fr_espeak.en.txt."""
    parts: list[Path] = []
    for i, text in enumerate(FR_TEXT):
        part = tmp / f"fr_{i}.wav"
        synth("espeak", "fr", text, part, tmp, FR_ESPEAK_WPM)
        parts.append(part)
    concat(parts, OUT_DIR / "fr_espeak.flac", tmp)
    write_text(OUT_DIR / "fr_espeak.txt", FR_TEXT)
    write_text(OUT_DIR / "fr_espeak.en.txt", FR_TEXT_EN)


def encode_mp3(src: Path, dst: Path) -> None:
    """Encode ``src`` as CBR mp3 with PyAV/libmp3lame.

    FFmpeg's mp3 muxer writes a Xing "Info" header holding the exact frame count, so the
    declared duration of a truncated copy still is that of the whole file.
    """
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = MP3_KBPS * 1000
        for frame in inp.decode(audio=0):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def make_bad_and_mp3(en_parts: Sequence[Path], tmp: Path) -> None:
    """Build good_short.mp3, bad_truncated.mp3 (en_espeak cut short) and bad_not_audio.wav."""
    short_wav = tmp / "good_short.wav"
    concat([en_parts[i] for i in GOOD_SHORT_PARTS], short_wav, tmp)
    encode_mp3(short_wav, OUT_DIR / "good_short.mp3")
    full_wav = tmp / "en_espeak_full.wav"
    concat(en_parts, full_wav, tmp)
    full_mp3 = tmp / "en_espeak.mp3"
    encode_mp3(full_wav, full_mp3)
    data = full_mp3.read_bytes()
    (OUT_DIR / "bad_truncated.mp3").write_bytes(data[: int(len(data) * TRUNCATE_FRACTION)])
    (OUT_DIR / "bad_not_audio.wav").write_text(
        "This is not audio. It is a plain text file with a .wav extension.\n", encoding="utf-8"
    )


def main() -> None:
    """Regenerate every fixture."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        en_parts = make_en_espeak(tmp)
        make_en_recorded(tmp)
        make_fr_espeak(tmp)
        make_bad_and_mp3(en_parts, tmp)


if __name__ == "__main__":
    main()
