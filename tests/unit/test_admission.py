"""Admission by memory: each running job's audio counts against one budget, in arrival order."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.audio import DATA, RATE
from tests.audio_tricks import wav_declaring
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import JobCancelled
from whisperx_api.memory import available_memory_bytes
from whisperx_api.pipeline.admission import (
    DEFAULT_BUDGET_CAP_BYTES,
    MIB,
    MIN_BUDGET_BYTES,
    MemoryBudget,
    default_budget_bytes,
    estimated_seconds,
    job_bytes,
)
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.duration import declared_seconds
from whisperx_api.runtime.embedded import memory_budget

DEADLINE = 30.0  # seconds: generous, the machine may be busy


def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` (polling), failing after DEADLINE."""
    done = threading.Event()
    for _ in range(int(DEADLINE / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached in time")


# --- sizes ----------------------------------------------------------------------------------


def test_a_job_counts_twice_its_decoded_audio_plus_its_buffers() -> None:
    assert job_bytes(0) == 16 * MIB
    assert job_bytes(3600) == 2 * 16_000 * 4 * 3600 + 16 * MIB  # 476 MB for an hour


def test_the_estimate_is_the_declared_length_else_a_bound_from_the_size() -> None:
    assert estimated_seconds(12.5, 10**9, 14_400) == 12.5
    assert estimated_seconds(20_000, 10, 14_400) == 14_400  # a header cannot claim more
    assert estimated_seconds(None, 60_000, 14_400) == 60  # as if 8 kbit/s
    assert estimated_seconds(None, 10**9, 14_400) == 14_400


def test_declared_seconds_reads_headers_without_decoding(tmp_path: Path) -> None:
    declared = declared_seconds(DATA / "en_recorded.flac")
    assert declared == pytest.approx(26.31, abs=0.05)
    assert declared_seconds(DATA / "bad_not_audio.wav") is None
    assert declared_seconds(tmp_path / "gone.wav") is None


def test_a_stream_declares_what_its_file_does_and_is_left_where_it_was(tmp_path: Path) -> None:
    lying = wav_declaring(tmp_path / "lying.wav", 2 * RATE * 3600)  # 16-bit mono: an hour
    assert declared_seconds(lying) == pytest.approx(3600, rel=0.01)  # the RIFF header's claim
    for path in (lying, DATA / "en_recorded.flac"):
        with path.open("rb") as stream:
            stream.seek(0)
            assert declared_seconds(stream) == declared_seconds(path)
            assert stream.tell() == 0
    junk = io.BytesIO(b"not audio at all" * 100)
    junk.seek(7)
    assert declared_seconds(junk) is None
    assert junk.tell() == 7


def test_the_default_budget_is_a_quarter_of_what_is_free_within_bounds() -> None:
    assert default_budget_bytes(2048 * MIB) == 512 * MIB
    assert default_budget_bytes(64 * 1024 * MIB) == DEFAULT_BUDGET_CAP_BYTES == 768 * MIB
    assert default_budget_bytes(100 * MIB) == MIN_BUDGET_BYTES
    assert default_budget_bytes(None) == DEFAULT_BUDGET_CAP_BYTES


def test_the_composition_root_uses_the_setting_else_the_machine() -> None:
    assert memory_budget(Settings(jobs={"memory_budget_mb": 100})).capacity == 100 * MIB
    assert memory_budget(Settings(), available=1024 * MIB).capacity == 256 * MIB


def test_available_memory_is_the_smaller_of_the_kernel_and_the_cgroup(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  8000000 kB\nMemAvailable:  4000000 kB\n", encoding="ascii")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    assert available_memory_bytes(meminfo, cgroup) == 4_000_000 * 1024
    (cgroup / "memory.max").write_text("max\n", encoding="ascii")
    assert available_memory_bytes(meminfo, cgroup) == 4_000_000 * 1024
    (cgroup / "memory.max").write_text(f"{2048 * MIB}\n", encoding="ascii")
    (cgroup / "memory.current").write_text(f"{512 * MIB}\n", encoding="ascii")
    assert available_memory_bytes(meminfo, cgroup) == 1536 * MIB
    assert available_memory_bytes(tmp_path / "none", tmp_path / "none") is None


# --- the budget -----------------------------------------------------------------------------


class Holder:
    """Runs `budget.admit(nbytes)` on a thread and holds the admission until released."""

    def __init__(self, pool: ThreadPoolExecutor, budget: MemoryBudget, nbytes: int) -> None:
        self.admitted = threading.Event()
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self.future: Future[None] = pool.submit(self._run, budget, nbytes)

    def _run(self, budget: MemoryBudget, nbytes: int) -> None:
        def check() -> None:
            if self.cancelled.is_set():
                raise JobCancelled("cancelled")

        with budget.admit(nbytes, check):
            self.admitted.set()
            assert self.release.wait(DEADLINE)

    def finish(self) -> None:
        self.release.set()
        self.future.result(DEADLINE)


@pytest.fixture
def pool() -> Any:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def test_a_job_alone_is_admitted_however_large(pool: ThreadPoolExecutor) -> None:
    budget = MemoryBudget(100)
    huge = Holder(pool, budget, 10_000)
    assert huge.admitted.wait(DEADLINE)
    assert budget.used == 10_000
    huge.finish()
    assert budget.used == 0


def test_jobs_that_fit_run_together_and_one_that_does_not_waits(pool: ThreadPoolExecutor) -> None:
    budget = MemoryBudget(100)
    first, second = Holder(pool, budget, 40), Holder(pool, budget, 40)
    assert first.admitted.wait(DEADLINE)
    assert second.admitted.wait(DEADLINE)
    third = Holder(pool, budget, 40)
    until(lambda: budget.waiting == 1)
    assert not third.admitted.is_set()
    first.finish()
    assert third.admitted.wait(DEADLINE)
    assert budget.used == 80
    second.finish()
    third.finish()
    assert (budget.used, budget.waiting) == (0, 0)


def test_a_waiting_long_job_is_not_overtaken_by_later_short_ones(
    pool: ThreadPoolExecutor,
) -> None:
    budget = MemoryBudget(100)
    running = Holder(pool, budget, 60)
    assert running.admitted.wait(DEADLINE)
    long = Holder(pool, budget, 90)
    until(lambda: budget.waiting == 1)
    short = Holder(pool, budget, 10)  # would fit now, but the long job came first
    until(lambda: budget.waiting == 2)
    assert not short.admitted.is_set()
    running.finish()
    assert long.admitted.wait(DEADLINE)
    assert short.admitted.wait(DEADLINE)  # 90 + 10 fit together
    long.finish()
    short.finish()


def test_a_job_cancelled_while_waiting_leaves_the_line(pool: ThreadPoolExecutor) -> None:
    budget = MemoryBudget(100)
    running = Holder(pool, budget, 80)
    assert running.admitted.wait(DEADLINE)
    gave_up = Holder(pool, budget, 50)
    until(lambda: budget.waiting == 1)
    after = Holder(pool, budget, 20)  # fits, but waits behind the first in line
    until(lambda: budget.waiting == 2)
    gave_up.cancelled.set()
    with pytest.raises(JobCancelled):
        gave_up.future.result(DEADLINE)
    assert after.admitted.wait(DEADLINE)
    assert not gave_up.admitted.is_set()
    running.finish()
    after.finish()
    assert (budget.used, budget.waiting) == (0, 0)


def test_a_job_longer_than_declared_is_charged_its_real_size(pool: ThreadPoolExecutor) -> None:
    budget = MemoryBudget(100)
    with budget.admit(30) as admission:
        admission.charge(70)  # never waits, even past what would fit
        admission.charge(50)  # never shrinks
        assert budget.used == 70
        waiting = Holder(pool, budget, 40)
        until(lambda: budget.waiting == 1)
    assert waiting.admitted.wait(DEADLINE)
    waiting.finish()
    assert budget.used == 0


# --- the pipeline admits each job before decoding it ----------------------------------------


class HeldTranscriber(FakeTranscriber):
    """The fake backend, holding every call until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def transcribe(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        assert self.release.wait(DEADLINE)
        return super().transcribe(audio, options, ctx)


def test_the_runner_holds_each_job_s_share_while_it_runs(pool: ThreadPoolExecutor) -> None:
    transcriber = HeldTranscriber()
    one_job = job_bytes(26.4)
    budget = MemoryBudget(one_job + job_bytes(10) // 2)  # room for one of these, not two
    runner = PipelineRunner(transcriber, max_audio_seconds=600, admission=budget)
    options = TranscriptionOptions(model="base")

    def job(name: str) -> Transcript:
        return runner.run(DATA / name, options, StageContext())

    first = pool.submit(job, "en_recorded.flac")  # 26.31 s
    until(lambda: budget.used > 0)
    second = pool.submit(job, "en_espeak.flac")  # 20.29 s
    until(lambda: budget.waiting == 1)
    assert job_bytes(26.3) <= budget.used <= one_job
    assert transcriber.calls == []
    assert not first.done()
    transcriber.release.set()
    assert first.result(DEADLINE).duration == pytest.approx(26.31, abs=0.05)
    assert second.result(DEADLINE).duration == pytest.approx(20.29, abs=0.05)
    assert transcriber.max_running == 1
    assert (budget.used, budget.waiting) == (0, 0)


# --- a pulling consumer (a Kafka worker) ----------------------------------------------------


def test_a_consumer_holding_nothing_always_pulls() -> None:
    budget = MemoryBudget(MIN_BUDGET_BYTES)
    with budget.admit(10 * MIN_BUDGET_BYTES):  # someone else's huge job
        assert budget.room_for_another(0)


def test_jobs_on_their_way_count_as_the_smallest_job() -> None:
    smallest = job_bytes(0)
    budget = MemoryBudget(3 * smallest)
    assert budget.room_for_another(1)  # one on its way, one more: two of three
    assert budget.room_for_another(2)  # three of three
    assert not budget.room_for_another(3)  # a fourth would not fit


def test_admitted_jobs_count_their_charge_not_the_smallest(pool: ThreadPoolExecutor) -> None:
    smallest = job_bytes(0)
    budget = MemoryBudget(4 * smallest)
    big = Holder(pool, budget, 3 * smallest)
    assert big.admitted.wait(DEADLINE)
    assert budget.room_for_another(1)  # the admitted one (3) and one more (1)
    assert not budget.room_for_another(2)  # ... and one still on its way: 5 of 4
    big.finish()
    assert budget.room_for_another(2)


def test_a_consumer_stops_pulling_while_a_job_waits_for_admission(
    pool: ThreadPoolExecutor,
) -> None:
    budget = MemoryBudget(100 * job_bytes(0))
    running = Holder(pool, budget, 90 * job_bytes(0))
    assert running.admitted.wait(DEADLINE)
    waiting = Holder(pool, budget, 20 * job_bytes(0))
    until(lambda: budget.waiting == 1)
    assert not budget.room_for_another(2)  # there would be room for a small one: not before it
    running.finish()
    assert waiting.admitted.wait(DEADLINE)
    assert budget.room_for_another(1)
    waiting.finish()
