"""Regenerate the live speaker-label fixture: a two-party call paced like a live conversation.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_live_conversation.py

Writes ``live2.flac`` + ``live2.rttm``. Requires the Debian packages ``espeak-ng`` and ``sox``.
The voices and the way each utterance is made are those of ``fast2`` (see
``make_fast_conversation.py``); only the script and its pacing differ. Most replies come after
a pause of 0.8-1.3 s, long enough for server VAD (500 ms of silence) to end the turn there; a few
come 150-250 ms after the other speaker stops, so that one VAD turn holds both parties, and
short replies ("Okay.", "Right.", "Sure.") stand as turns of their own. Output is deterministic
for espeak-ng 1.51 and SoX 14.4.2.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from make_fast_conversation import make

# (speaker, text, offset): offset is seconds from the end of the previous utterance to the start
# of this one.
LIVE2: tuple[tuple[str, str, float], ...] = (
    ("maya", "Good morning, this is Maya from the print shop.", 0.0),
    ("sam", "Hi Maya. Is this about the posters for the fair?", 0.9),
    ("maya", "Yes. The proofs are ready and I would like you to check the colours.", 1.0),
    ("sam", "Okay.", 0.85),
    ("maya", "The blue came out a little darker than on your screen.", 1.1),
    ("sam", "That is fine, as long as the logo is still easy to read.", 0.2),
    ("maya", "It is. I also moved the date up so it stands out.", 0.9),
    ("sam", "Right.", 1.0),
    ("maya", "How many copies do you need in the end?", 1.2),
    ("sam", "Two hundred of the large ones and five hundred flyers.", 0.95),
    ("maya", "Sure.", 0.9),
    ("sam", "Can you deliver them to the school gym on Thursday?", 1.3),
    ("maya", "Thursday works. Our van goes out there after lunch.", 0.15),
    ("sam", "Great. Somebody from the parents group will be there to sign for them.", 1.0),
    ("maya", "Perfect. I will send the invoice with the delivery note.", 1.1),
    ("sam", "Thank you so much for all the help.", 0.9),
    ("maya", "You are welcome. Good luck with the fair.", 1.0),
    ("sam", "Bye now.", 0.25),
)


def main() -> None:
    """Regenerate the fixture."""
    with tempfile.TemporaryDirectory() as name:
        make("live2", LIVE2, Path(name))


if __name__ == "__main__":
    main()
