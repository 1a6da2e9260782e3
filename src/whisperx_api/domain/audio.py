"""Decoded audio as the pipeline sees it: 16 kHz mono float32 samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class ClipDecoder(Protocol):
    """Decodes a short clip a client sent inline (a known speaker's voice reference).

    The runtime provides it: decoding runs off the event loop under a time limit and a packet
    budget, and `InvalidAudio`/`AudioTooLong` say why a clip was refused.
    """

    async def decode_clip(self, data: bytes, max_seconds: float) -> DecodedAudio: ...
