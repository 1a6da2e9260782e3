"""Speech spans from streamed probabilities: the same spans as faster-whisper's whole-file VAD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faster_whisper import vad as fw_vad
from faster_whisper.vad import VadOptions, get_speech_timestamps

from tests.audio import DATA
from whisperx_api.errors import InvalidAudio
from whisperx_api.pipeline.stages.decode import decode_audio
from whisperx_api.pipeline.stages.vad_probs import WINDOW
from whisperx_api.pipeline.stages.vad_spans import SpanRules, speech_spans, speech_timestamps

# The defaults, what transcription uses (160 ms silences, 30 s chunks), and strict settings
# that cut often at the maximum length.
OPTIONS = [
    VadOptions(),
    VadOptions(min_silence_duration_ms=160, max_speech_duration_s=30),
    VadOptions(
        threshold=0.6,
        neg_threshold=0.3,
        min_speech_duration_ms=500,
        min_silence_duration_ms=60,
        max_speech_duration_s=3,
        speech_pad_ms=100,
    ),
    VadOptions(min_silence_duration_ms=1000, max_speech_duration_s=2, speech_pad_ms=600),
]


def _fixtures() -> list[Path]:
    found = []
    for path in sorted(DATA.iterdir()):
        if path.suffix not in {".flac", ".mp3", ".wav"}:
            continue
        try:
            decode_audio(path, 600)
        except InvalidAudio:
            continue  # the deliberately broken fixture
        found.append(path)
    return found


FIXTURES = _fixtures()


def test_every_decodable_fixture_is_compared() -> None:
    assert len(FIXTURES) >= 19  # all of tests/data's audio but the file that is not audio


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_same_spans_as_faster_whisper_on_the_fixtures(path: Path) -> None:
    samples = decode_audio(path, 600).samples
    for options in OPTIONS:
        assert speech_timestamps(samples, options) == get_speech_timestamps(samples, options)


@pytest.mark.parametrize("windows", [1, 40, 600])
@pytest.mark.parametrize("extra", [0, 1, 511])
def test_same_spans_at_and_around_multiples_of_512(windows: int, extra: int) -> None:
    speech = decode_audio(DATA / "en_espeak.flac", 600).samples
    samples = speech[: windows * WINDOW + extra].copy()
    for options in OPTIONS:
        assert speech_timestamps(samples, options) == get_speech_timestamps(samples, options)


def test_long_speech_is_cut_at_pauses_and_hard_where_none_is_long_enough() -> None:
    samples = decode_audio(DATA / "narration.flac", 600).samples
    options = VadOptions(min_silence_duration_ms=2000, max_speech_duration_s=4)
    spans = speech_timestamps(samples, options)
    assert spans == get_speech_timestamps(samples, options)
    assert len(spans) > 48 / 4  # 48 s of narration under a 4 s cap
    assert max(s["end"] - s["start"] for s in spans) <= 4 * 16000


def test_silence_and_tiny_inputs() -> None:
    for samples in (
        np.zeros(16000 * 3, dtype=np.float32),
        np.zeros(WINDOW, dtype=np.float32),
        np.zeros(7, dtype=np.float32),
    ):
        assert speech_timestamps(samples, VadOptions()) == []
        assert get_speech_timestamps(samples, VadOptions()) == []


class _GivenProbabilities:
    """Stands in for Silero inside faster-whisper: returns chosen probabilities."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        assert len(audio) == len(self.probs) * WINDOW
        return self.probs


@pytest.fixture
def given(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs faster-whisper's span rules on chosen probabilities."""

    def spans(probs: np.ndarray, length: int, options: VadOptions) -> list[dict[str, int]]:
        monkeypatch.setattr(fw_vad, "get_vad_model", lambda: _GivenProbabilities(probs))
        return fw_vad.get_speech_timestamps(np.zeros(length, dtype=np.float32), options)

    return spans


def _random_probabilities(rng: np.random.Generator, windows: int) -> np.ndarray:
    """Runs of speech, silence and values between the thresholds, of random lengths."""
    probs = np.empty(windows, dtype=np.float32)
    at = 0
    while at < windows:
        run = int(rng.integers(1, 120))
        kind = rng.integers(0, 4)
        low, high = [(0.0, 0.2), (0.6, 1.0), (0.3, 0.55), (0.0, 1.0)][kind]
        probs[at : at + run] = rng.uniform(low, high, size=min(run, windows - at))
        at += run
    return probs


def test_same_rules_as_faster_whisper_on_random_probabilities(given: Any) -> None:
    rng = np.random.default_rng(12)
    rule_sets = [
        *OPTIONS,
        VadOptions(threshold=0.5, neg_threshold=0.5, min_silence_duration_ms=0),
        VadOptions(min_speech_duration_ms=0, max_speech_duration_s=1.5, speech_pad_ms=0),
        VadOptions(max_speech_duration_s=0.5, speech_pad_ms=30, min_silence_duration_ms=50),
    ]
    cases = 0
    for trial in range(300):
        length = int(rng.integers(1, 4000)) * WINDOW + int(rng.integers(0, 2)) * int(
            rng.integers(0, WINDOW)
        )
        probs = _random_probabilities(rng, length // WINDOW + 1)
        options = rule_sets[trial % len(rule_sets)]
        expected = given(probs, length, options)
        assert speech_spans(probs, length, SpanRules.of(options)) == expected, trial
        cases += len(expected) > 1
    assert cases > 100  # most trials produce several spans, splits and merges


def test_threshold_boundaries_match(given: Any) -> None:
    options = VadOptions(neg_threshold=0.35)
    probs = np.array([0.5, 0.35, 0.34999, np.float32(0.35), 0.5] * 50 + [0.0] * 30, np.float32)
    length = len(probs) * WINDOW - 5
    assert speech_spans(probs, length, SpanRules.of(options)) == given(probs, length, options)
