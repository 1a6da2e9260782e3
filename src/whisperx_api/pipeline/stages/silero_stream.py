"""Silero VAD (the ONNX model faster-whisper's wheel ships) as a streaming model for live
sessions: the same network and the same 512-sample windows as file VAD, with its recurrent
state and the 64-sample context carried from one call to the next, so a stream fed in pieces
gets exactly the probabilities of the whole recording."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import numpy.typing as npt

WINDOW = 512  # 32 ms at 16 kHz, what the model was trained on
CONTEXT = 64


class SileroStream:
    """One live stream's VAD state over the process's shared Silero session."""

    def __init__(self) -> None:
        model: Any = importlib.import_module("faster_whisper.vad").get_vad_model()
        self._session: Any = model.session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    @property
    def window(self) -> int:
        return WINDOW

    def feed(self, samples: npt.NDArray[np.float32]) -> list[float]:
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        whole = len(audio) // WINDOW * WINDOW
        self._pending = audio[whole:].copy()
        if whole == 0:
            return []
        windows = audio[:whole].reshape(-1, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -CONTEXT:]])
        self._context = windows[-1, -CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        probs, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        return [float(p) for p in np.asarray(probs).reshape(-1)]
