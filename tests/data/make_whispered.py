"""Regenerate the whispered-speech fixture: a sentence the voice detector barely hears.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_whispered.py

Writes ``whispered.flac``: ``TEXT`` whispered by espeak-ng 1.51 (voice ``en-us+whisper``,
``WPM`` words a minute; requires the Debian package ``espeak-ng``), resampled to 16 kHz mono
with PyAV and peak-normalised. Silero VAD gives almost none of it a speech probability of 0.5,
while Whisper base reads it word for word: speech the voice detector disagrees with that is
still speech. Deterministic for espeak-ng 1.51.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from make_loop import OUT_DIR, peak, read, write_flac

TEXT = "The weather was warm and sunny, so we had lunch in the park."
VOICE = "en-us+whisper"
WPM = 170


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spoken = Path(tmp) / "whispered.wav"
        command = ["espeak-ng", "-v", VOICE, "-s", str(WPM), "-w", str(spoken), TEXT]
        subprocess.run(command, check=True)
        write_flac(OUT_DIR / "whispered.flac", peak(read(spoken)))


if __name__ == "__main__":
    main()
