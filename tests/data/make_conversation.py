"""Regenerate the diarization fixtures: synthetic conversations with known speaker turns.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_conversation.py

Writes ``conv4.flac`` + ``conv4.rttm`` (four voices) and ``conv2.flac`` + ``conv2.rttm`` (two
voices). Requires the Debian packages ``flite``, ``espeak-ng`` and ``sox``. Each utterance is
synthesised, resampled to 16 kHz mono 16-bit, trimmed of leading/trailing silence and normalised
to the same peak; the utterances are then joined with fixed gaps of digital silence, so every
reference turn is sample-exact: it starts where the utterance starts and ends where it ends.
Output is deterministic for fixed tool versions (flite 2.2, espeak-ng 1.51, SoX 14.4.2).
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent
SAMPLE_RATE = 16_000
SAMPLE_BYTES = 2
LEAD_S = 0.5
TAIL_S = 0.5
# Gaps between turns cycle through these, so turn changes are not all alike.
GAPS_S = (0.45, 0.7, 0.35, 0.6, 0.5)
ESPEAK_WPM = 160
SOX = ("sox", "-R", "-D", "-V1")
# Trim leading and trailing silence (below 0.5 % of full scale for 20 ms), then peak-normalise.
TRIM_AND_NORM = (
    *("silence", "1", "0.02", "0.5%", "reverse"),
    *("silence", "1", "0.02", "0.5%", "reverse"),
    *("norm", "-3"),
)


@dataclass(frozen=True)
class Voice:
    """A synthetic voice: engine ("flite" or "espeak") and the engine's voice name."""

    engine: str
    name: str


# Chosen for distinct CAM++ speaker embeddings: the four flite voices are distinct speakers,
# but rms and awb are the closest pair (mean cosine 0.57), so one espeak-ng voice replaces rms.
VOICES: dict[str, Voice] = {
    "alice": Voice("flite", "slt"),
    "bob": Voice("flite", "kal"),
    "carol": Voice("espeak", "en-us+f3"),
    "dave": Voice("flite", "awb"),
    "erin": Voice("flite", "rms"),
}

CONV4: tuple[tuple[str, str], ...] = (
    ("alice", "Good morning everyone, thanks for joining the planning call."),
    ("bob", "Morning. I have the budget numbers ready when you need them."),
    ("carol", "Before we start, did everyone get the updated agenda?"),
    ("dave", "Yes, I printed a copy and read it on the train."),
    ("alice", "Great. Let us begin with the schedule for the spring release."),
    ("dave", "The design work is nearly finished, maybe two more weeks."),
    ("bob", "That fits, as long as the testing team starts in April."),
    ("carol", "I can ask them today and report back tomorrow."),
    ("alice", "Perfect. Now, what about the new office in the north?"),
    ("bob", "The lease is signed, and the furniture arrives next month."),
    ("dave", "Just one: who is organising the summer party this year?"),
    ("carol", "I volunteer, but I will need some help with the music."),
    ("bob", "Count me in. I know a band that plays at weddings."),
    ("alice", "Wonderful, then we are done. Thank you all very much."),
)

CONV2: tuple[tuple[str, str], ...] = (
    ("alice", "Hello, this is the front desk. How can I help you today?"),
    ("erin", "Hi, I would like to book a room for two nights, please."),
    ("alice", "Of course. Which dates are you thinking of?"),
    ("erin", "From the twelfth to the fourteenth of next month."),
    ("alice", "We have a double room with a view of the river."),
    ("erin", "Great, please book it. My name is Taylor."),
    ("alice", "Thank you, Taylor. Your booking is confirmed."),
)


def run(cmd: Sequence[str | Path]) -> None:
    """Run a command, failing loudly."""
    subprocess.run([str(c) for c in cmd], check=True)


def synth(voice: Voice, text: str, dst: Path, tmp: Path) -> None:
    """Synthesise ``text`` as a trimmed, normalised 16 kHz mono 16-bit WAV."""
    raw = tmp / f"raw_{dst.name}"
    if voice.engine == "flite":
        run(["flite", "-voice", voice.name, "-t", text, "-o", raw])
    elif voice.engine == "espeak":
        run(["espeak-ng", "-v", voice.name, "-s", str(ESPEAK_WPM), "-w", raw, text])
    else:
        raise ValueError(f"unknown engine {voice.engine!r}")
    run([*SOX, raw, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", dst, *TRIM_AND_NORM])


def read_pcm(path: Path) -> bytes:
    """The raw 16-bit frames of a 16 kHz mono WAV."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == SAMPLE_RATE
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == SAMPLE_BYTES
        return wav.readframes(wav.getnframes())


def silence(seconds: float) -> bytes:
    """Digital silence of ``seconds``, rounded to whole samples."""
    return b"\x00" * (round(seconds * SAMPLE_RATE) * SAMPLE_BYTES)


def seconds(pcm: bytes) -> float:
    """Duration of 16-bit mono PCM."""
    return len(pcm) / SAMPLE_BYTES / SAMPLE_RATE


def rttm_line(uri: str, start: float, duration: float, speaker: str) -> str:
    """One RTTM SPEAKER record (NIST format, as pyannote.core reads it)."""
    return f"SPEAKER {uri} 1 {start:.3f} {duration:.3f} <NA> <NA> {speaker} <NA> <NA>"


def make(uri: str, turns: Sequence[tuple[str, str]], tmp: Path) -> None:
    """Write ``uri``.flac and ``uri``.rttm from the scripted turns."""
    pcm = bytearray(silence(LEAD_S))
    lines: list[str] = []
    for i, (speaker, text) in enumerate(turns):
        if i:
            pcm += silence(GAPS_S[(i - 1) % len(GAPS_S)])
        part = tmp / f"{uri}_{i:02d}.wav"
        synth(VOICES[speaker], text, part, tmp)
        utterance = read_pcm(part)
        lines.append(rttm_line(uri, seconds(bytes(pcm)), seconds(utterance), speaker))
        pcm += utterance
    pcm += silence(TAIL_S)
    joined = tmp / f"{uri}.wav"
    with wave.open(str(joined), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_BYTES)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(pcm))
    run([*SOX, joined, OUT_DIR / f"{uri}.flac"])
    (OUT_DIR / f"{uri}.rttm").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    """Regenerate both conversations."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        make("conv4", CONV4, tmp)
        make("conv2", CONV2, tmp)


if __name__ == "__main__":
    main()
