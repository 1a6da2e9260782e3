"""The faster-whisper backend on the bundled tiny.en model: placement, options, cache reuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ctranslate2
import pytest

from tests.audio import DATA
from tests.wer import normalized_wer
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import InvalidRequest
from whisperx_api.pipeline.batching.whisper import default_batch_size
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

pytestmark = pytest.mark.slow

GOOD_SHORT = (
    "Good morning, and welcome to the weekly team meeting. "
    "Thank you for listening, and have a nice day."
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> FasterWhisperBackend:
    catalog = ModelCatalog("tiny.en", cache_dir=tmp_path_factory.mktemp("cache"))
    return FasterWhisperBackend(catalog, DeviceConfig(device="cpu"))


def run(backend: FasterWhisperBackend, path: Path, **options: Any) -> Transcript:
    runner = PipelineRunner(backend, max_audio_seconds=600)
    return runner.run(path, TranscriptionOptions(model="tiny.en", **options), StageContext())


def test_cuda_request_depends_on_the_machine(backend: FasterWhisperBackend) -> None:
    if ctranslate2.get_cuda_device_count() == 0:
        with pytest.raises(InvalidRequest) as info:
            backend.check_device("cuda", 0)
        assert info.value.param == "device"
    else:
        backend.check_device("cuda", 0)
    backend.check_device("cpu", None)


def test_explicit_default_placement_shares_the_default_model(backend: FasterWhisperBackend) -> None:
    first = run(backend, DATA / "good_short.mp3")
    second = run(backend, DATA / "good_short.mp3", device="cpu", device_index=3)
    assert backend.loaded_models() == ["tiny.en"]
    assert backend.load_count("tiny.en") == 1
    for transcript in (first, second):
        assert normalized_wer(GOOD_SHORT, transcript.text) <= 0.1


def test_word_timestamps_and_progress(backend: FasterWhisperBackend) -> None:
    seen: list[float] = []
    runner = PipelineRunner(backend, max_audio_seconds=600)
    transcript = runner.run(
        DATA / "good_short.mp3",
        TranscriptionOptions(model="tiny.en", word_timestamps=True),
        StageContext(on_progress=seen.append),
    )
    words = transcript.words
    assert len(words) >= 15
    assert all(0 <= w.start <= w.end <= transcript.duration + 0.05 for w in words)
    assert seen[0] == 0.0
    assert seen[-1] == 1.0
    assert seen == sorted(seen)


def test_suppress_numerals_spells_numbers_out(backend: FasterWhisperBackend) -> None:
    wav = DATA / "en_numbers.flac"
    plain = run(backend, wav)
    spelled = run(backend, wav, suppress_numerals=True)
    assert any(ch.isdigit() for ch in plain.text)
    assert not any(ch.isdigit() for ch in spelled.text)


def test_cancellation_between_segments(backend: FasterWhisperBackend) -> None:
    from whisperx_api.errors import JobCancelled

    runner = PipelineRunner(backend, max_audio_seconds=600)
    with pytest.raises(JobCancelled):
        runner.run(
            DATA / "en_recorded.flac",
            TranscriptionOptions(model="tiny.en"),
            StageContext(is_cancelled=lambda: True),
        )


def test_batch_size_unset_is_four_on_cpu_and_a_setting_wins(
    backend: FasterWhisperBackend, tmp_path: Path
) -> None:
    with backend._cache.acquire("tiny.en") as loaded:
        assert (loaded.batch_size, loaded.scheduler._max_batch) == (4, 4)
    catalog = ModelCatalog("tiny.en", cache_dir=tmp_path)
    chosen = FasterWhisperBackend(catalog, DeviceConfig(device="cpu"), batch_size=8)
    try:
        with chosen._cache.acquire("tiny.en") as loaded:
            assert (loaded.batch_size, loaded.scheduler._max_batch) == (8, 8)
    finally:
        chosen.close()
    assert default_batch_size("cuda") == 8
