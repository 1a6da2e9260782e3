"""The GPU's encoder path, run on the CPU with the real base model: one encoder call per batch
(`WHISPER__CPU_BATCHED_ENCODER`), and a batch's subset encoded again for word timings, give the
same text and word times as the CPU's chunk-by-chunk encoder."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.audio import DATA
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

pytestmark = pytest.mark.slow

# (file, word timings): 3 to 52 s, one to two chunks each, English and French; jobs with and
# without word timings share batches, so a batch's subset is aligned on its own.
JOBS = [
    ("conv4.flac", True),
    ("en_recorded.flac", False),
    ("fr_espeak.flac", True),
    ("en_espeak.flac", True),
    ("good_short.mp3", False),
    ("en_numbers.flac", True),
]
REQUEST_SECONDS = 600


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoder-cache")


def backend(cache_dir: Path, batched: bool, batch_size: int | None = None) -> FasterWhisperBackend:
    devices = DeviceConfig("cpu", cpu_batched_encoder=batched)
    catalog = ModelCatalog("base", cache_dir=cache_dir)
    return FasterWhisperBackend(catalog, devices, batch_size=batch_size)


@pytest.fixture(scope="module")
def per_chunk(cache_dir: Path) -> Iterator[FasterWhisperBackend]:
    made = backend(cache_dir, batched=False)
    yield made
    made.close()


@pytest.fixture(scope="module")
def per_batch(cache_dir: Path) -> Iterator[FasterWhisperBackend]:
    made = backend(cache_dir, batched=True)
    yield made
    made.close()


def encoder_calls(backend: FasterWhisperBackend) -> list[int]:
    """Record the batch size of every encoder call the loaded base model makes from now on."""
    calls: list[int] = []
    with backend._cache.acquire("base") as loaded:
        model = loaded.model
        real = model.encode

        def encode(features: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(len(features))
            return real(features, *args, **kwargs)

        model.encode = encode
    return calls


def summary(transcript: Transcript) -> tuple[str, list[str], list[tuple[str, float, float]]]:
    words = [(w.text, w.start, w.end) for w in transcript.words]
    return transcript.language, [s.text for s in transcript.segments], words


def transcribe(
    backend: FasterWhisperBackend, job: tuple[str, bool], chunk_size: int | None = None
) -> Any:
    name, word_timestamps = job
    runner = PipelineRunner(backend, max_audio_seconds=600)
    options = TranscriptionOptions(
        model="base", word_timestamps=word_timestamps, chunk_size=chunk_size
    )
    return summary(runner.run(DATA / name, options, StageContext()))


def test_the_batched_encoder_gives_the_per_chunk_text_and_word_times(
    per_chunk: FasterWhisperBackend, per_batch: FasterWhisperBackend
) -> None:
    per_chunk.load_model("base")
    per_batch.load_model("base")
    chunk_calls = encoder_calls(per_chunk)
    batch_calls = encoder_calls(per_batch)

    expected = [transcribe(per_chunk, job) for job in JOBS]
    with ThreadPoolExecutor(len(JOBS)) as pool:
        together = list(pool.map(lambda job: transcribe(per_batch, job), JOBS))

    assert [language for language, _, _ in expected] == ["en", "en", "fr", "en", "en", "en"]
    assert all(words for (_, timed), (_, _, words) in zip(JOBS, expected, strict=True) if timed)
    assert together == expected
    # Each path ran: chunk by chunk on one side (each of the 7 chunks encoded once); on the
    # other, whole batches, and again the subsets of a batch that needed word timings.
    assert chunk_calls == [1] * 7
    assert max(batch_calls) > 2, batch_calls
    assert sum(batch_calls) > sum(chunk_calls), batch_calls


def test_a_batch_of_eight_the_gpu_s_size_encodes_as_chunk_by_chunk(
    cache_dir: Path, per_chunk: FasterWhisperBackend
) -> None:
    """CUDA's default batch (8) through the real encoder in one call: a 26-s recording cut
    into chunks of at most 3 s queues more than eight at once, so a whole batch of eight is
    encoded together; the text and word times are the per-chunk encoder's."""
    job = ("en_recorded.flac", True)
    eight = backend(cache_dir, batched=True, batch_size=8)
    try:
        eight.load_model("base")
        calls = encoder_calls(eight)
        together = transcribe(eight, job, chunk_size=3)
    finally:
        eight.close()
    per_chunk.load_model("base")
    alone = transcribe(per_chunk, job, chunk_size=3)
    assert 8 in calls, calls
    assert max(calls) == 8
    assert together == alone
    assert alone[1]
