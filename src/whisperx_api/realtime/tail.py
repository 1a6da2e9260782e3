"""The recent input audio of a session, addressed by 16 kHz sample index since its start."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class AudioTail:
    """Appended samples from `start` to `end`; older ones are dropped once no turn needs them."""

    def __init__(self) -> None:
        self.start = 0
        self.end = 0
        self._chunks: list[npt.NDArray[np.float32]] = []

    def append(self, samples: npt.NDArray[np.float32]) -> None:
        if len(samples):
            self._chunks.append(samples)
            self.end += len(samples)

    def slice(self, begin: int, stop: int) -> npt.NDArray[np.float32]:
        """A copy of samples `begin..stop` (clamped to what is kept)."""
        joined = self._joined()
        return joined[max(begin - self.start, 0) : max(stop - self.start, 0)].copy()

    def keep_from(self, index: int) -> None:
        """Forget the samples before `index`."""
        joined = self._joined()
        drop = min(max(index - self.start, 0), len(joined))
        if drop:
            self._chunks = [joined[drop:]] if drop < len(joined) else []
            self.start += drop

    def _joined(self) -> npt.NDArray[np.float32]:
        if len(self._chunks) != 1:
            self._chunks = [np.concatenate(self._chunks)] if self._chunks else []
        return self._chunks[0] if self._chunks else np.zeros(0, dtype=np.float32)
