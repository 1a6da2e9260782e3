"""Silero VAD speech probabilities over a whole file, without whole-file copies.

faster-whisper's `SileroVADModel.__call__` wants its input padded to whole 512-sample windows
and then builds a second array with each window's 64-sample context in front: for an hour of
16 kHz float32 (230 MB) that is a 230 MB padded copy plus a 259 MB model input, at once. This
runs the same ONNX session, carrying the LSTM state from one batch to the next exactly as that
method does, but builds each batch's input from views of the caller's samples, 2 000 windows
(64 s, 4.6 MB) at a time: the session's working memory grows with the batch (about 180 MB at
that method's 10 000 windows, 75 MB at 2 000, for the same speed), and the windows are
processed in order with the state carried, so the batch size does not change a single bit.
The probabilities are bit-identical to
`get_vad_model()(np.pad(samples, (0, -len(samples) % 512)))`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE

WINDOW = 512
CONTEXT = 64
BATCH_WINDOWS = 2_000  # faster-whisper's is 10 000: same results, less working memory


def speech_probabilities(
    samples: npt.NDArray[np.float32], windows: int | None = None
) -> npt.NDArray[np.float32]:
    """One speech probability per 512-sample window (the last window zero-padded).

    `windows` (at least the windows the samples need) adds all-zero windows at the end, as
    faster-whisper's `get_speech_timestamps` does: it always pads by 1..512 samples, so a
    length that is a multiple of 512 gets one silent window more.
    """
    from faster_whisper.vad import get_vad_model

    session = get_vad_model().session
    needed = -(-len(samples) // WINDOW)
    windows = needed if windows is None else windows
    if windows < needed:
        raise ValueError(f"{windows} windows cannot hold {len(samples)} samples")
    probs = np.empty(windows, dtype=np.float32)
    h = np.zeros((1, 1, 128), dtype=np.float32)
    c = np.zeros((1, 1, 128), dtype=np.float32)
    for first in range(0, windows, BATCH_WINDOWS):
        batch = _batch(samples, first, min(windows, first + BATCH_WINDOWS), windows)
        output, h, c = session.run(None, {"input": batch, "h": h, "c": c})
        probs[first : first + len(batch)] = np.asarray(output, dtype=np.float32).reshape(-1)
    return probs


def _batch(
    samples: npt.NDArray[np.float32], first: int, stop: int, windows: int
) -> npt.NDArray[np.float32]:
    """Rows of [previous window's last 64 samples, this window], as faster-whisper builds them:
    the first window's context is zeros, and so are the last window's final 64 samples."""
    rows = stop - first
    batch = np.zeros((rows, CONTEXT + WINDOW), dtype=np.float32)
    flat = samples[first * WINDOW : stop * WINDOW]
    whole = len(flat) // WINDOW
    batch[:whole, CONTEXT:] = flat[: whole * WINDOW].reshape(whole, WINDOW)
    tail = flat[whole * WINDOW :]
    batch[whole:, CONTEXT : CONTEXT + len(tail)] = tail  # the zero-padded last window
    if first > 0:
        context = samples[first * WINDOW - CONTEXT : first * WINDOW]  # short past the end
        batch[0, : len(context)] = context
    batch[1:, :CONTEXT] = batch[:-1, -CONTEXT:]
    if stop == windows:
        batch[-1, -CONTEXT:] = 0.0
    return batch


SPEECH_THRESHOLD = 0.5
"""Silero's own threshold: a window at or above it is speech."""


def speech_share(probs: npt.NDArray[np.float32], start: float, end: float) -> float:
    """The share of the windows over `start`..`end` seconds (at least one) that Silero called
    speech at its own threshold, whatever threshold the caller cut the file's spans with."""
    first = min(int(start * SAMPLE_RATE) // WINDOW, max(len(probs) - 1, 0))
    stop = max(-(-int(end * SAMPLE_RATE) // WINDOW), first + 1)
    window = probs[first:stop]
    if not len(window):
        return 1.0  # nothing to judge by: no disagreement
    return float(np.count_nonzero(window >= SPEECH_THRESHOLD)) / len(window)
