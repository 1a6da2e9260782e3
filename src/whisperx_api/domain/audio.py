"""Decoded audio as the pipeline sees it: 16 kHz mono float32 samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000

MAX_CHANNELS = 8
"""Channels a multichannel job decodes and transcribes one by one: memory (each channel holds
its own buffer) and time grow with their number."""


@dataclass(frozen=True, slots=True, eq=False)
class DecodedAudio:
    """Mono float32 samples in [-1, 1] at `SAMPLE_RATE`."""

    samples: npt.NDArray[np.float32]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE
