"""The attempt runner (`jobs.attempt`) both workers share, over both job stores: what each
verdict leaves in the store, without a Kafka stack. The Kafka worker's own part (messages,
commits, dead letters) is tested end to end in tests/integration/test_worker_verdicts.py."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.contract.conftest import OpenStore
from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript
from whisperx_api.errors import BackendError, InvalidAudio, JobCancelled, StorageError
from whisperx_api.jobs.attempt import AttemptPolicy, AttemptRunner
from whisperx_api.jobs.ports import JobStore
from whisperx_api.jobs.retry import Verdict
from whisperx_api.pipeline.stage import StageContext

pytestmark = pytest.mark.anyio

TRANSCRIPT = Transcript(Task.TRANSCRIBE, "en", 1.0, (Segment(0, 0.0, 1.0, "hello"),))


@dataclass
class Told:
    """The announcer: what a Kafka worker would publish."""

    retried: list[int] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)

    async def retrying(self, job: JobRecord) -> None:
        self.retried.append(job.attempts)

    async def giving_up(self, job: JobRecord, verdict: Verdict) -> None:
        self.gave_up.append(verdict.cause)


@dataclass
class Audio:
    deleted: list[str] = field(default_factory=list)

    def delete_job(self, job_id: str) -> None:
        self.deleted.append(job_id)


def runner(
    store: JobStore, told: Told, audio: Audio, *, lease: float = math.inf, worker: str = "w1"
) -> AttemptRunner:
    policy = AttemptPolicy(3, lease, progress_seconds=0.0, backoff_base=0.01, backoff_cap=0.02)
    return AttemptRunner(store, audio, worker, policy, told, asyncio.Event())


def failing(exc: BaseException) -> Callable[[JobRecord, StageContext], Any]:
    async def pipeline(job: JobRecord, ctx: StageContext) -> Transcript:
        raise exc

    return pipeline


async def succeed(job: JobRecord, ctx: StageContext) -> Transcript:
    ctx.report(0.5)
    return TRANSCRIPT


def queued(store: JobStore, job_id: str = "a") -> None:
    store.insert(job_id, JobSpec(options=TranscriptionOptions(model="base")))


def claim(store: JobStore, lease: float = math.inf, worker: str = "w1") -> JobRecord:
    job = store.claim(worker, lease)
    assert job is not None
    return job


def record(store: JobStore, job_id: str = "a") -> JobRecord:
    found = store.get(job_id)
    assert found is not None
    return found


async def test_a_success_stores_the_result_and_deletes_the_audio(store: JobStore) -> None:
    told, audio = Told(), Audio()
    queued(store)
    assert await runner(store, told, audio).run(claim(store), succeed, lambda: False)
    read = store.read_result("a")
    assert read is not None
    assert read.record.status is JobStatus.COMPLETED
    assert read.result is not None
    assert '"hello"' in read.result
    assert (audio.deleted, told.retried, told.gave_up) == (["a"], [], [])


async def test_a_server_error_is_retried_until_the_last_attempt_gives_up(store: JobStore) -> None:
    told, audio = Told(), Audio()
    attempts = runner(store, told, audio)
    queued(store)
    for _ in range(3):
        assert await attempts.run(claim(store), failing(BackendError("boom")), lambda: False)
    failed = record(store)
    assert (failed.status, failed.attempts, failed.error_code) == (
        JobStatus.FAILED,
        3,
        "max_attempts",
    )
    assert failed.error == "failed after 3 attempt(s): boom"
    assert (told.retried, told.gave_up, audio.deleted) == ([1, 2], ["boom"], ["a"])


async def test_bad_input_fails_at_once(store: JobStore) -> None:
    told, audio = Told(), Audio()
    queued(store)
    bad = InvalidAudio("not audio")
    assert await runner(store, told, audio).run(claim(store), failing(bad), lambda: False)
    failed = record(store)
    assert (failed.status, failed.attempts, failed.error, failed.error_code) == (
        JobStatus.FAILED,
        1,
        "not audio",
        bad.code,
    )
    assert (told.retried, told.gave_up) == ([], [])


async def test_a_shutdown_puts_the_job_back_uncounted(store: JobStore) -> None:
    told, audio = Told(), Audio()
    queued(store)
    stopped = failing(JobCancelled("the job was cancelled"))
    assert not await runner(store, told, audio).run(claim(store), stopped, lambda: True)
    back = record(store)
    assert (back.status, back.attempts, back.error) == (
        JobStatus.QUEUED,
        0,
        "interrupted by a shutdown",
    )
    assert (told.retried, audio.deleted) == ([], [])


async def test_a_claim_after_a_lost_last_attempt_gives_up_without_running(
    store: JobStore,
) -> None:
    told, audio = Told(), Audio()
    queued(store)
    for n in range(3):  # three workers die in turn: the third claim was the last attempt
        store.claim(f"dead-{n}", 1.0, "a", now=1000.0 * (n + 1))
    job = claim_lapsed(store)
    assert job.attempts == 4
    ran: list[str] = []

    async def pipeline(job: JobRecord, ctx: StageContext) -> Transcript:
        ran.append(job.id)
        return TRANSCRIPT

    assert await runner(store, told, audio).run(job, pipeline, lambda: False)
    failed = record(store)
    assert (ran, failed.status, failed.error_code) == ([], JobStatus.FAILED, "max_attempts")
    assert told.gave_up == ["its worker stopped before finishing it"]


def claim_lapsed(store: JobStore) -> JobRecord:
    job = store.claim("w1", math.inf, "a")
    assert job is not None
    return job


async def test_a_lost_worker_is_recovered_as_a_retry_then_as_a_failure(store: JobStore) -> None:
    told, audio = Told(), Audio()
    attempts = runner(store, told, audio)
    queued(store)
    for expected in (JobStatus.QUEUED, JobStatus.QUEUED, JobStatus.FAILED):
        claim(store, worker="gone")
        (lost,) = store.lapsed(math.inf)  # at startup: whatever is processing lost its worker
        await attempts.recover(lost)
        assert record(store).status is expected
    failed = record(store)
    assert (failed.attempts, failed.error_code) == (3, "max_attempts")
    assert failed.error == "failed after 3 attempt(s): its worker stopped before finishing it"
    assert (told.retried, told.gave_up) == ([1, 2], ["its worker stopped before finishing it"])


class RefusingResults:
    """The store, except that every result write fails (a full disk)."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self.refused = 0

    def complete(self, *args: Any, **kwargs: Any) -> bool:
        self.refused += 1
        raise StorageError("The job database failed (SQLITE_FULL).")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_result_the_store_keeps_refusing_fails_the_attempt_and_the_job_is_retried(
    store: JobStore,
) -> None:
    told, audio = Told(), Audio()
    refusing = RefusingResults(store)
    queued(store)
    attempts = runner(refusing, told, audio)  # type: ignore[arg-type]
    assert await attempts.run(claim(store), succeed, lambda: False)
    again = record(store)
    assert (again.status, again.attempts) == (JobStatus.QUEUED, 1)
    assert again.error == "The job database failed (SQLITE_FULL)."
    assert (refusing.refused, told.retried, audio.deleted) == (4, [1], [])


async def test_a_job_taken_over_by_another_worker_is_abandoned(open_store: OpenStore) -> None:
    store, other = open_store(), open_store()
    told, audio = Told(), Audio()
    queued(store)
    job = claim(store, lease=0.3)

    async def pipeline(job: JobRecord, ctx: StageContext) -> Transcript:
        assert other.claim("w2", 60.0, "a", now=job.started_at + 10**6) is not None  # lapsed
        while True:  # until the lease keeper finds the job gone
            await asyncio.sleep(0.05)
            ctx.check_cancelled()

    keeper = runner(store, told, audio, lease=0.3)
    assert await asyncio.wait_for(keeper.run(job, pipeline, lambda: False), 60)
    now = record(store)
    assert (now.status, now.worker, now.attempts) == (JobStatus.PROCESSING, "w2", 2)
    assert (told.retried, told.gave_up, audio.deleted) == ([], [], [])
