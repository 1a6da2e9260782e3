"""Both worker kinds end a job the same way on the same error: one attempts policy decides.

Each case runs the embedded pool (SQLite store, local audio) and the Kafka worker (a real Tansu
broker, a real moto S3 server) on the real pipeline with a transcriber that fails as told, and
checks the job's stored outcome against one expected row, whatever the mode.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from tests.audio import DATA
from tests.fakes import FakeTranscriber
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint
from whisperx_api.config import S3Settings
from whisperx_api.distributed.kafka_messages import DeadLetter, JobMessage
from whisperx_api.distributed.kafka_queue import KafkaJobConsumer, KafkaJobProducer, ensure_topics
from whisperx_api.distributed.kafka_worker import KafkaWorker, WorkerPolicy
from whisperx_api.distributed.s3 import S3BlobStore, ensure_bucket, make_s3_client
from whisperx_api.distributed.s3_store import S3JobStore
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import BackendError, InvalidRequest, ModelNotFound, NotFound
from whisperx_api.jobs.signals import JobSignals
from whisperx_api.jobs.store import SqliteJobStore
from whisperx_api.jobs.worker import WorkerPool
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.storage.local import LocalBlobStore

__all__ = ["kafka_bootstrap", "s3_endpoint"]  # the fixtures, imported for pytest

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

AUDIO = DATA / "en_espeak.flac"
KINDS = ("embedded", "kafka", "kafka-many")  # kafka-many: a worker holding 4 jobs at once
DEADLINE_SECONDS = 60.0
STOPPING = object()  # the transcriber runs until the worker is told to stop


class ScriptedTranscriber(FakeTranscriber):
    """Fails every run with `failure`; with STOPPING, runs until the job is cancelled."""

    def __init__(self, failure: object) -> None:
        super().__init__()
        self.failure = failure
        self.started = threading.Event()

    def _work(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        self.started.set()
        if self.failure is STOPPING:
            while True:
                ctx.check_cancelled()
                time.sleep(0.01)
        assert isinstance(self.failure, Exception)
        raise self.failure


@dataclass(frozen=True)
class Outcome:
    """What the store holds for the job once the worker has settled it."""

    status: JobStatus
    error: str | None
    error_code: str | None
    attempts: int

    @classmethod
    def of(cls, record: JobRecord) -> Outcome:
        return cls(record.status, record.error, record.error_code, record.attempts)


@dataclass
class Deployment:
    """One worker kind, started, with its store; `submit` queues a job as its API would."""

    submit: Callable[[str], Awaitable[None]]
    get: Callable[[str], JobRecord | None]
    stop: Callable[[], Awaitable[None]]
    dead_letters: Callable[[], Awaitable[list[DeadLetter]]]
    claim_for_a_dead_worker: Callable[[str], Awaitable[None]]
    start: Callable[[], Awaitable[None]]


def spec() -> JobSpec:
    return JobSpec(TranscriptionOptions(model="base"))


@asynccontextmanager
async def embedded(
    tmp_path: Path, transcriber: FakeTranscriber, max_attempts: int
) -> AsyncIterator[Deployment]:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    blobs = LocalBlobStore(tmp_path / "blobs")
    signals = JobSignals()
    runner = PipelineRunner(transcriber, max_audio_seconds=600)
    pool = WorkerPool(store, blobs, runner, signals, size=1, max_attempts=max_attempts)

    async def submit(job_id: str) -> None:
        store.insert(job_id, spec())
        with AUDIO.open("rb") as audio:
            blobs.save_audio(job_id, audio, 1 << 30)
        signals.work_available.set()

    async def claim_for_a_dead_worker(job_id: str) -> None:
        """The server that ran this attempt died: the job is left processing in the store."""
        await submit(job_id)
        claimed = store.claim("dead-server", math.inf)
        assert claimed is not None
        assert claimed.id == job_id

    async def no_dead_letters() -> list[DeadLetter]:
        return []

    try:
        yield Deployment(
            submit=submit,
            get=store.get,
            stop=lambda: pool.stop(grace_seconds=0.1),
            dead_letters=no_dead_letters,
            claim_for_a_dead_worker=claim_for_a_dead_worker,
            start=pool.start,
        )
    finally:
        await pool.stop(grace_seconds=0.1)
        store.close()


@asynccontextmanager
async def kafka(
    tmp_path: Path,
    transcriber: FakeTranscriber,
    max_attempts: int,
    bootstrap: str,
    s3_endpoint: str,
    max_jobs: int = 1,
) -> AsyncIterator[Deployment]:
    name = f"verdicts-{uuid.uuid4().hex[:8]}"
    requests, dead = f"{name}-jobs", f"{name}-dead"
    await ensure_topics(bootstrap, (requests, dead), 1)
    settings = S3Settings(endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test")
    client = make_s3_client(settings)
    ensure_bucket(client, name)
    store = S3JobStore(client, name)
    audio = S3BlobStore(client, name)
    api = KafkaJobProducer(bootstrap, requests, dead, client_id="test-api")
    await api.start()
    worker = KafkaWorker(
        "worker-1",
        KafkaJobConsumer(bootstrap, requests, name, session_timeout_ms=6_000),
        KafkaJobProducer(bootstrap, requests, dead, client_id="worker-1"),
        store,
        audio,
        PipelineRunner(transcriber, max_audio_seconds=600),
        tmp_path / "scratch",
        WorkerPolicy(max_attempts, lease_seconds=30, grace_seconds=0.1, max_jobs=max_jobs),
    )
    running: list[asyncio.Task[None]] = []

    async def start() -> None:
        running.append(asyncio.create_task(worker.run()))

    async def submit(job_id: str) -> None:
        await asyncio.to_thread(store.insert, job_id, spec())
        with AUDIO.open("rb") as upload:
            await asyncio.to_thread(audio.save_audio, job_id, upload, 1 << 30)
        await api.publish(JobMessage(job_id=job_id, attempt=1, submitted_at=time.time()))

    async def claim_for_a_dead_worker(job_id: str) -> None:
        """Another worker claimed the job under a lease that lapses at once, then died."""
        await submit(job_id)
        claimed = await asyncio.to_thread(store.claim, "dead-worker", 0.01, job_id)
        assert claimed is not None
        assert claimed.attempts == 1

    async def stop() -> None:
        worker.request_stop()
        await asyncio.gather(*running)
        running.clear()

    async def dead_letters() -> list[DeadLetter]:
        return await read_topic(bootstrap, dead)

    try:
        yield Deployment(
            submit=submit,
            get=store.get,
            stop=stop,
            dead_letters=dead_letters,
            claim_for_a_dead_worker=claim_for_a_dead_worker,
            start=start,
        )
    finally:
        if running:
            await stop()
        await api.stop()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Each test runs once per worker kind."""
    return str(request.param)


@pytest.fixture
def deploy(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> Callable[[FakeTranscriber, int], Any]:
    """`deploy(transcriber, max_attempts)`: the context manager of this test's worker kind."""
    if kind == "embedded":
        return lambda transcriber, attempts: embedded(tmp_path, transcriber, attempts)
    # Started here, before the test's event loop: their readiness checks run loops of their own.
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    endpoint = request.getfixturevalue("s3_endpoint")
    held = 4 if kind == "kafka-many" else 1
    return lambda transcriber, attempts: kafka(
        tmp_path, transcriber, attempts, bootstrap, endpoint, held
    )


async def read_topic(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Everything on a one-partition topic so far."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        partition = TopicPartition(topic, 0)
        reader.assign([partition])
        await reader.seek_to_beginning()
        end = (await reader.end_offsets([partition]))[partition]
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + DEADLINE_SECONDS
        while await reader.position(partition) < end and time.monotonic() < deadline:
            batch = await reader.getmany(timeout_ms=500)
            letters += [DeadLetter.from_bytes(r.value) for rs in batch.values() for r in rs]
        return letters
    finally:
        await reader.stop()


async def settled(deployment: Deployment, job_id: str, status: JobStatus) -> Outcome:
    """The job's outcome once it reaches `status`; a generous deadline, polled."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        record = await asyncio.to_thread(deployment.get, job_id)
        if record is not None and record.status is status:
            return Outcome.of(record)
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {status.value} in {DEADLINE_SECONDS:g} s")


FAILURES = [
    pytest.param(
        InvalidRequest("Invalid 'prompt': too long.", param="prompt"),
        Outcome(JobStatus.FAILED, "Invalid 'prompt': too long.", None, 1),
        id="bad-input-fails-at-once",
    ),
    pytest.param(
        ModelNotFound("The model 'large-v9' does not exist."),
        Outcome(JobStatus.FAILED, "The model 'large-v9' does not exist.", "model_not_found", 1),
        id="unknown-model-fails-at-once",
    ),
    pytest.param(
        NotFound("Model 'base' is not loaded."),
        Outcome(JobStatus.FAILED, "Model 'base' is not loaded.", "not_found", 1),
        id="not-found-fails-at-once",
    ),
    pytest.param(
        BackendError("The model 'base' could not be loaded."),
        Outcome(
            JobStatus.FAILED,
            "failed after 2 attempt(s): The model 'base' could not be loaded.",
            "max_attempts",
            2,
        ),
        id="backend-error-retried-then-gives-up",
    ),
    pytest.param(
        RuntimeError("a bug whose details stay in the log"),
        Outcome(JobStatus.FAILED, "failed after 2 attempt(s): internal error", "max_attempts", 2),
        id="bug-retried-then-gives-up-without-details",
    ),
]


@pytest.mark.parametrize(("failure", "expected"), FAILURES)
async def test_the_same_error_ends_the_job_the_same_way(
    deploy: Callable[..., Any], kind: str, failure: Exception, expected: Outcome
) -> None:
    async with deploy(ScriptedTranscriber(failure), 2) as deployment:
        await deployment.start()
        await deployment.submit("job-1")
        assert await settled(deployment, "job-1", JobStatus.FAILED) == expected
        letters = await deployment.dead_letters()
    if kind.startswith("kafka") and expected.error_code == "max_attempts":
        cause = expected.error.split(": ", 1)[1]  # type: ignore[union-attr]
        assert [(d.job_id, d.attempts, d.reason) for d in letters] == [("job-1", 2, cause)]
    else:
        assert letters == []


async def test_a_shutdown_puts_the_running_job_back_uncounted(
    deploy: Callable[..., Any], kind: str
) -> None:
    transcriber = ScriptedTranscriber(STOPPING)
    async with deploy(transcriber, 2) as deployment:
        await deployment.start()
        await deployment.submit("job-1")
        assert await asyncio.to_thread(transcriber.started.wait, DEADLINE_SECONDS)
        await deployment.stop()
        outcome = await settled(deployment, "job-1", JobStatus.QUEUED)
    assert outcome == Outcome(JobStatus.QUEUED, "interrupted by a shutdown", None, 0)


async def test_a_job_whose_worker_died_on_its_last_attempt_gives_up(
    deploy: Callable[..., Any], kind: str
) -> None:
    transcriber = ScriptedTranscriber(AssertionError("the job must not run again"))
    async with deploy(transcriber, 1) as deployment:
        await deployment.claim_for_a_dead_worker("job-1")
        await deployment.start()
        outcome = await settled(deployment, "job-1", JobStatus.FAILED)
        letters = await deployment.dead_letters()
    reason = "its worker stopped before finishing it"
    # The Kafka worker's claim counted one more attempt before the policy refused to run it.
    attempts = 2 if kind.startswith("kafka") else 1
    expected = Outcome(JobStatus.FAILED, f"failed after 1 attempt(s): {reason}", "max_attempts", 1)
    assert outcome == Outcome(expected.status, expected.error, expected.error_code, attempts)
    assert not transcriber.started.is_set()
    if kind.startswith("kafka"):
        assert [(d.job_id, d.attempts, d.reason) for d in letters] == [("job-1", 1, reason)]
