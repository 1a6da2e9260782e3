"""Regenerate `conv2_stereo.flac`: the two-party conversation `conv2.flac` as a call recorder
saves it, one party per channel (alice left, erin right), digital silence on a channel while the
other party speaks. The turns come from `conv2.rttm`, so that file is this one's reference too.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_stereo_call.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.audio import DATA
from tests.stereo import split_by_speaker, write_channels


def main() -> None:
    speakers, channels = split_by_speaker("conv2")
    assert speakers == ["alice", "erin"], speakers
    write_channels(DATA / "conv2_stereo.flac", channels)


if __name__ == "__main__":
    main()
