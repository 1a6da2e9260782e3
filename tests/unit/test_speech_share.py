"""The share of a span the voice detector called speech, from its per-window probabilities."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from whisperx_api.pipeline.stages.vad_probs import SPEECH_THRESHOLD, WINDOW, speech_share

STEP = WINDOW / 16_000  # seconds a window: 0.032


def probabilities(*runs: tuple[int, float]) -> npt.NDArray[np.float32]:
    """One probability per window: (windows, probability) runs in order."""
    return np.concatenate([np.full(count, p, dtype=np.float32) for count, p in runs])


def test_speech_share_counts_windows_at_silero_threshold() -> None:
    probs = probabilities((50, 0.9), (50, 0.1), (50, SPEECH_THRESHOLD))
    assert speech_share(probs, 0.0, 50 * STEP) == 1.0
    assert speech_share(probs, 50 * STEP, 100 * STEP) == 0.0
    assert speech_share(probs, 100 * STEP, 150 * STEP) == 1.0  # at the threshold is speech
    assert speech_share(probs, 25 * STEP, 75 * STEP) == 0.5


def test_a_span_between_the_lowered_and_the_default_threshold_is_not_speech() -> None:
    """A caller's lower `vad_threshold` lets such windows into a chunk; they still do not count."""
    probs = probabilities((150, 0.3))
    assert speech_share(probs, 0.0, 150 * STEP) == 0.0


def test_a_span_shorter_than_a_window_or_past_the_end_reads_one_window() -> None:
    probs = probabilities((30, 0.9), (30, 0.0))
    assert speech_share(probs, 10 * STEP, 10 * STEP) == 1.0
    assert speech_share(probs, 30.2 * STEP, 30.4 * STEP) == 0.0
    assert speech_share(probs, 100 * STEP, 120 * STEP) == 0.0  # past the end: the last window
    assert speech_share(np.zeros(0, dtype=np.float32), 0.0, 1.0) == 1.0
