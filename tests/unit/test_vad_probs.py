"""Streaming Silero probabilities: the same numbers as faster-whisper's whole-file call."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.vad import get_vad_model

from tests.audio import DATA
from whisperx_api.pipeline.stages.decode import decode_audio
from whisperx_api.pipeline.stages.vad_probs import BATCH_WINDOWS, WINDOW, speech_probabilities


def _whole_file_call(samples: np.ndarray) -> np.ndarray:
    padded = np.pad(samples, (0, -len(samples) % WINDOW))
    return np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)


@pytest.mark.parametrize("extra", [0, 1, 511])
def test_bit_identical_to_the_whole_file_call_in_one_batch(extra: int) -> None:
    speech = decode_audio(DATA / "en_espeak.flac", 600).samples
    samples = speech[: 300 * WINDOW + extra].copy()
    assert np.array_equal(speech_probabilities(samples), _whole_file_call(samples))


def test_bit_identical_to_the_whole_file_call_across_batches() -> None:
    speech = decode_audio(DATA / "en_espeak.flac", 600).samples
    repeats = -(-(BATCH_WINDOWS + 50) * WINDOW // len(speech))  # more than one batch
    samples = np.tile(speech, repeats)[: (BATCH_WINDOWS + 50) * WINDOW + 300].copy()
    whole = _whole_file_call(samples)
    streamed = speech_probabilities(samples)
    assert streamed.shape == whole.shape
    assert np.array_equal(streamed, whole)
    assert 0.05 < float((streamed > 0.5).mean()) < 0.95  # speech and pauses both seen


def test_the_callers_samples_are_left_untouched() -> None:
    samples = decode_audio(DATA / "en_espeak.flac", 600).samples
    before = samples.copy()
    speech_probabilities(samples)
    assert np.array_equal(samples, before)
