"""Batching across requests on the real base model: a chunk decoded in a batch with other jobs'
chunks gives exactly the text (and word times) it gives when its job runs alone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import DATA
from tests.metrics_reader import Samples, parse, value
from tests.server import serving
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import JobCancelled
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

pytestmark = pytest.mark.slow

# Several languages (one detected per job) and lengths: 7 s to 26 s, one to three chunks each.
FIXTURES = [
    "en_recorded.flac",
    "fr_espeak.flac",
    "good_short.mp3",
    "en_espeak.flac",
    "en_numbers.flac",
]
REQUEST_SECONDS = 300


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batching-cache")


@pytest.fixture(scope="module")
def backend(cache_dir: Path) -> FasterWhisperBackend:
    return FasterWhisperBackend(ModelCatalog("base", cache_dir=cache_dir), DeviceConfig("cpu"))


def run(
    backend: FasterWhisperBackend, name: str, ctx: StageContext | None = None, **options: Any
) -> Transcript:
    runner = PipelineRunner(backend, max_audio_seconds=600)
    return runner.run(
        DATA / name, TranscriptionOptions(model="base", **options), ctx or StageContext()
    )


Summary = tuple[str, list[str], list[tuple[str, float, float]]]


def summary(transcript: Transcript) -> Summary:
    words = [(w.text, w.start, w.end) for w in transcript.words]
    return transcript.language, [s.text for s in transcript.segments], words


@pytest.fixture(scope="module")
def alone_summaries() -> dict[tuple[str, bool], Summary]:
    """Each fixture's summary when its job ran by itself, by (name, word_timestamps): computed
    once for the module, by the test that counts its batches or by the first that needs it."""
    return {}


def alone(
    backend: FasterWhisperBackend,
    known: dict[tuple[str, bool], Summary],
    name: str,
    word_timestamps: bool = True,
) -> Summary:
    if (name, word_timestamps) not in known:
        known[name, word_timestamps] = summary(run(backend, name, word_timestamps=word_timestamps))
    return known[name, word_timestamps]


def batches_run(backend: FasterWhisperBackend) -> int:
    with backend._cache.acquire("base") as loaded:
        return loaded.scheduler.batches_run


def concurrently(work: Callable[[str], Any], names: list[str]) -> list[Any]:
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(work, names))


@pytest.mark.parametrize("word_timestamps", [False, True])
def test_batched_jobs_give_the_same_transcripts_as_alone(
    backend: FasterWhisperBackend,
    alone_summaries: dict[tuple[str, bool], Summary],
    word_timestamps: bool,
) -> None:
    backend.load_model("base")
    before = batches_run(backend)
    alone = [summary(run(backend, n, word_timestamps=word_timestamps)) for n in FIXTURES]
    alone_batches = batches_run(backend) - before
    alone_summaries.update(
        ((n, word_timestamps), result) for n, result in zip(FIXTURES, alone, strict=True)
    )

    before = batches_run(backend)
    together = concurrently(
        lambda n: summary(run(backend, n, word_timestamps=word_timestamps)), FIXTURES
    )
    together_batches = batches_run(backend) - before

    assert [lang for lang, _, _ in alone] == ["en", "fr", "en", "en", "en"]
    assert together == alone
    # The jobs did share batches: fewer model calls than when each ran by itself.
    assert together_batches < alone_batches, (together_batches, alone_batches)


def test_streamed_text_and_progress_stay_per_job(
    backend: FasterWhisperBackend, alone_summaries: dict[tuple[str, bool], Summary]
) -> None:
    texts: dict[str, list[str]] = {n: [] for n in FIXTURES}
    progress: dict[str, list[float]] = {n: [] for n in FIXTURES}

    def job(name: str) -> Transcript:
        ctx = StageContext(progress[name].append, on_text=texts[name].append)
        return run(backend, name, ctx)

    results = concurrently(job, FIXTURES)
    for name, transcript in zip(FIXTURES, results, strict=True):
        assert texts[name], name
        assert texts[name][-1].strip() == transcript.text.strip()
        assert progress[name] == sorted(progress[name])
        assert progress[name][-1] == 1.0
        # Streaming to its own listener changed nothing in the job's result.
        assert summary(transcript) == alone(backend, alone_summaries, name)


def test_a_cancelled_job_stops_while_the_others_finish(
    backend: FasterWhisperBackend, alone_summaries: dict[tuple[str, bool], Summary]
) -> None:
    by_itself = alone(backend, alone_summaries, "en_espeak.flac")
    cancel = threading.Event()

    def cancelled_job(_: str) -> Transcript:
        def progressed(fraction: float) -> None:
            if fraction > 0:  # the first chunk is decoded; 52 s of speech leaves more queued
                cancel.set()

        ctx = StageContext(progressed, cancel.is_set)
        return run(backend, "conv4.flac", ctx, language="en", batch_size=1)

    def other_job(_: str) -> Transcript:
        return run(backend, "en_espeak.flac")

    with ThreadPoolExecutor(2) as pool:
        victim = pool.submit(cancelled_job, "")
        other = pool.submit(other_job, "")
        with pytest.raises(JobCancelled):
            victim.result(REQUEST_SECONDS)
        assert summary(other.result(REQUEST_SECONDS)) == by_itself


def test_concurrent_server_requests_match_their_alone_results(
    tmp_path: Path, cache_dir: Path
) -> None:
    env = {
        "WHISPER_TMP_FILES": str(tmp_path / "data"),
        "WHISPER__CACHE_DIR": str(cache_dir),
        "WHISPER__MODEL": "base",  # and the default concurrency: several jobs at once
    }

    def transcribe(client: httpx.Client, name: str) -> tuple[str, str]:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": (name, (DATA / name).read_bytes())},
            data={"model": "base", "response_format": "verbose_json"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body["language"], body["text"]

    with (
        serving(env, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=REQUEST_SECONDS) as client,
    ):
        alone = [transcribe(client, name) for name in FIXTURES]
        before = parse(client.get("/metrics").text)
        together = concurrently(lambda name: transcribe(client, name), FIXTURES)
        after = parse(client.get("/metrics").text)
    assert [language for language, _ in alone] == ["en", "fr", "en", "en", "en"]
    assert together == alone
    # Alone, every batch held one job's chunks; together, some held several jobs' at once.
    assert value(before, "whisperx_batch_jobs_count") > 0
    assert shared_batches(before) == 0
    assert shared_batches(after) >= 1


def shared_batches(samples: Samples) -> float:
    """Batches that held chunks of more than one job."""
    return value(samples, "whisperx_batch_jobs_count") - value(
        samples, "whisperx_batch_jobs_bucket", le="1.0"
    )


def test_a_live_decode_does_not_wait_for_a_file_jobs_batch(
    backend: FasterWhisperBackend, alone_summaries: dict[tuple[str, bool], Summary]
) -> None:
    backend.load_model("base")
    by_itself = alone(backend, alone_summaries, "good_short.mp3")
    entered, release = threading.Event(), threading.Event()
    with backend._cache.acquire("base") as loaded:
        files = loaded.scheduler
        real = files._run_batch

        def held(batch: Any) -> Any:
            entered.set()
            assert release.wait(REQUEST_SECONDS)
            return real(batch)

        files._run_batch = held  # type: ignore[method-assign]
        try:
            with ThreadPoolExecutor(1) as pool:
                file_job = pool.submit(run, backend, "en_espeak.flac")
                assert entered.wait(REQUEST_SECONDS)
                # The file job's batch is held in the model; a live turn still gets its text.
                live = summary(run(backend, "good_short.mp3", StageContext(live=True)))
                assert not file_job.done()
                release.set()
                assert file_job.result(REQUEST_SECONDS).text
        finally:
            release.set()
            files._run_batch = real  # type: ignore[method-assign]
    assert live == by_itself


def test_a_draft_reads_a_shorter_window_and_gives_the_full_window_s_text(
    backend: FasterWhisperBackend,
) -> None:
    """Live partials are drafts: each turn of a recorded call (2 to 3.5 s, cut as the server
    VAD cuts it: 0.3 s of padding before, 0.5 s of silence after), decoded on a 15-s window
    instead of 30 s, reads as the full decode does."""
    from faster_whisper import decode_audio

    from tests.wer import normalized_wer
    from whisperx_api.domain.audio import DecodedAudio

    call = decode_audio(str(DATA / "conv2.flac"))
    turns = [line.split()[3:5] for line in (DATA / "conv2.rttm").read_text().splitlines()]
    options = TranscriptionOptions(model="base", language="en", word_timestamps=False)
    errors: list[float] = []
    with live_windows(backend) as windows:
        for start, duration in turns:
            begin = max(0.0, float(start) - 0.3)
            end = float(start) + float(duration) + 0.5
            turn = DecodedAudio(call[int(begin * 16_000) : int(end * 16_000)])
            windows.clear()
            full = backend.transcribe(turn, options, StageContext(live=True)).text
            assert windows == [3000]
            windows.clear()
            draft = backend.transcribe(turn, options, StageContext(live=True, draft=True))
            assert windows == [1500]
            assert full.strip(), start
            errors.append(normalized_wer(full, draft.text))
    assert len(errors) == 7
    assert sum(errors) / len(errors) <= 0.1, errors


def test_a_turn_s_first_words_draft_reads_a_10_s_window_and_the_full_window_s_words(
    backend: FasterWhisperBackend,
) -> None:
    """The drafts of a turn's first words (at most 2 s of speech) read a 10-s window: the first
    1.6 s of each turn of a recorded call (0.3 s of padding, then its speech) reads as the full
    decode of the same audio does (measured: mean WER 0.13 against it; 0.13 on a 15-s window)."""
    from faster_whisper import decode_audio

    from tests.wer import normalized_wer
    from whisperx_api.domain.audio import DecodedAudio

    call = decode_audio(str(DATA / "conv2.flac"))
    turns = [line.split()[3] for line in (DATA / "conv2.rttm").read_text().splitlines()]
    options = TranscriptionOptions(model="base", language="en", word_timestamps=False)
    errors: list[float] = []
    with live_windows(backend) as windows:
        for start in turns:
            begin = max(0.0, float(start) - 0.3)
            turn = DecodedAudio(call[int(begin * 16_000) : int((begin + 1.6) * 16_000)])
            full = backend.transcribe(turn, options, StageContext(live=True)).text
            windows.clear()
            draft = backend.transcribe(turn, options, StageContext(live=True, draft=True))
            assert windows == [1000]
            assert full.strip(), start
            errors.append(normalized_wer(full, draft.text))
    assert len(errors) == 7
    assert sum(errors) / len(errors) <= 0.25, errors


@contextmanager
def live_windows(backend: FasterWhisperBackend) -> Iterator[list[int]]:
    """The mel window (frames) of every chunk the live scheduler decodes, while it lasts."""
    backend.load_model("base")
    windows: list[int] = []
    with backend._cache.acquire("base") as loaded:
        live = loaded.live_scheduler
        real = live._run_batch

        def recorded(batch: Any) -> Any:
            windows.extend(work.features.shape[-1] for work in batch)
            return real(batch)

        live._run_batch = recorded  # type: ignore[method-assign]
        try:
            yield windows
        finally:
            live._run_batch = real  # type: ignore[method-assign]


@contextmanager
def recorded_batches(backend: FasterWhisperBackend) -> Iterator[tuple[list[Any], list[int]]]:
    """Every batch the file scheduler runs (as each item's `probe` flag) and the batch size of
    every encoder call, while the context lasts."""
    backend.load_model("base")
    batches: list[list[bool]] = []
    encoded: list[int] = []
    with backend._cache.acquire("base") as loaded:
        scheduler, model = loaded.scheduler, loaded.model
        run_batch, encode = scheduler._run_batch, model.encode

        def recording(batch: Any) -> Any:
            batches.append([work.probe for work in batch])
            return run_batch(batch)

        def counting(features: Any, *args: Any, **kwargs: Any) -> Any:
            encoded.append(len(features))
            return encode(features, *args, **kwargs)

        scheduler._run_batch = recording  # type: ignore[method-assign]
        model.encode = counting
        try:
            yield batches, encoded
        finally:
            scheduler._run_batch = run_batch  # type: ignore[method-assign]
            model.encode = encode


def test_the_first_chunk_decodes_in_a_full_batch_once_a_probe_found_the_language(
    backend: FasterWhisperBackend,
) -> None:
    """While a file's language is unknown, only a probe of its first chunk (encoder and
    language detection) runs alone; that chunk then decodes in a full batch with the next
    ones, reusing the probe's encoder output. A 26-s recording cut into chunks of at most 3 s
    runs the same decode batches and encoder calls as with its language given, and reads the
    same."""
    with recorded_batches(backend) as (batches, encoded):
        detected = summary(run(backend, "en_recorded.flac", chunk_size=3))
        probed, probed_encoded = list(batches), list(encoded)
        batches.clear()
        encoded.clear()
        given = summary(run(backend, "en_recorded.flac", chunk_size=3, language="en"))
    assert detected == given
    assert detected[0] == "en"
    assert probed[0] == [True]
    assert [len(batch) for batch in probed[1:]] == [len(batch) for batch in batches]
    assert len(batches) > 2, batches
    assert len(batches[0]) == 4, batches  # the CPU's default batch
    assert not any(any(batch) for batch in (*probed[1:], *batches))
    assert probed_encoded == encoded == [1] * sum(map(len, batches))


def test_a_job_that_starts_beside_another_skips_the_probe_and_reads_the_same(
    backend: FasterWhisperBackend,
) -> None:
    """Beside another job, a first chunk shares that job's batches anyway, so no probe runs:
    a round of probes in a burst would put every job's first answer behind all of them. The
    first chunk is then decoded (one chunk while the language is unknown), and the file reads
    as when it ran alone with a probe."""
    with recorded_batches(backend) as (batches, _):
        alone = summary(run(backend, "en_recorded.flac", chunk_size=3))
        assert batches[0] == [True]
        batches.clear()
        with backend._cache.acquire("base") as loaded, loaded.scheduler.open_lane():
            beside = summary(run(backend, "en_recorded.flac", chunk_size=3))
    assert beside == alone
    assert batches[0] == [False]  # the first chunk, decoded at once
    assert not any(any(batch) for batch in batches)
