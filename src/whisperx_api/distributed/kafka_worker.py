"""`whisperx-api worker`: takes job messages from Kafka and runs them, up to `max_jobs` at once.

For each message: read the job from the shared store; skip it (and commit) if it is gone, finished
or held under another worker's live lease; otherwise claim it under a lease and hand it to the
attempt runner (`jobs.attempt`, shared with the embedded pool: it renews the lease, runs the
pipeline on the downloaded audio, acts on the verdict and stores the outcome); only then commit
the message. What is Kafka's stays here: the lease's length, the commit, the retry message and
the dead-letter topic (this worker is the runner's `Announcer`).

- A worker killed mid-job never commits: Kafka hands the message to another member after the
  rebalance, whose claim takes over once the dead worker's lease lapses (and if the message was
  already committed elsewhere, the lapsed-lease sweep publishes it again).
- A result is written once: `complete` is refused to a worker that no longer holds the lease, and
  the result object is create-only.
- What a failed attempt leads to is `jobs.retry.settle`'s verdict: a retry is a fresh message
  at the back of the topic; giving up after `max_attempts` parks the job on the dead-letter
  topic and turns it Failed with the reason; bad input fails at once.
- Stopping (SIGTERM) lets the running jobs finish within the grace period, else puts them back
  in line uncounted and leaves their messages uncommitted.
- With `max_jobs` above 1 (the default) the worker keeps taking messages while fewer jobs run
  and the memory budget (the embedded server's, `pipeline.admission`) has room for another,
  each in a task of its own, so that their chunks share the model's batches. The budget also
  admits each job's decoded audio in the pipeline, as in the embedded server; checking it
  before taking a message keeps a worker with a full budget from holding messages that
  another worker could run now. Messages then finish out of order; the consumer commits only
  each partition's finished prefix (see `kafka_queue`).
- A message left for redelivery (any `max_jobs`) is not rewound but tried again here, after its
  own backoff, in the slot it holds (a rewind would re-read the messages after it).
- A queued job whose message was never published (its API replica died in between) is deleted
  with its audio after `orphan_seconds`: no worker would hear of it, no client has its id.

Poison and faults (docs/modes.md, "Faults"):
- a message this build cannot read (an unknown version, not JSON) is dead-lettered with the
  reason, and its job (the message key) failed with `unreadable_job`, then committed past;
- a job record it cannot read (an unknown version, damaged JSON) dead-letters the message with
  the reason (the record is left as it is, for whoever can read it) and commits it;
- storage or broker trouble (after the attempt runner's own tries at writing an outcome) leaves
  the message for redelivery, and the worker backs off (bounded exponential) before it tries
  again, so a store that is down is not hammered;
- an unexpected error is treated the same way, until the same message has failed
  `max_attempts` times in a row: then it is dead-lettered with the error as the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from whisperx_api.distributed.kafka_messages import DeadLetter, JobMessage
from whisperx_api.distributed.kafka_queue import (
    Delivery,
    KafkaJobConsumer,
    KafkaJobProducer,
    Unreadable,
)
from whisperx_api.distributed.s3 import S3BlobStore
from whisperx_api.distributed.s3_store import S3JobStore
from whisperx_api.domain.job import JobRecord
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import CommitFailed, UnreadableJob, WhisperXApiError
from whisperx_api.executors import pipeline_pool, run_in, run_io
from whisperx_api.jobs.attempt import AttemptPolicy, AttemptRunner
from whisperx_api.jobs.backoff import Backoff, pause
from whisperx_api.jobs.retry import Action, Verdict
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext

log = logging.getLogger(__name__)

_PROGRESS_SECONDS = 2.0
_POLL_SECONDS = 1.0
_ROOM_POLL_SECONDS = 0.1  # how often a worker with a full memory budget looks again


@dataclass(frozen=True, slots=True)
class WorkerPolicy:
    """How a worker holds and retries jobs."""

    max_attempts: int
    lease_seconds: float
    grace_seconds: float = 30.0
    preload: tuple[str, ...] = ("transcription",)
    orphan_seconds: float = 600.0
    max_jobs: int = 1  # jobs held at once, within the runner's memory budget


class KafkaWorker:
    """One consumer, up to `max_jobs` jobs at once; run several processes for more throughput."""

    def __init__(
        self,
        worker_id: str,
        consumer: KafkaJobConsumer,
        producer: KafkaJobProducer,
        store: S3JobStore,
        audio: S3BlobStore,
        runner: PipelineRunner,
        scratch_dir: Path,
        policy: WorkerPolicy,
    ) -> None:
        self.worker_id = worker_id
        self._consumer = consumer
        self._producer = producer
        self._store = store
        self._audio = audio
        self._runner = runner
        self._scratch = scratch_dir
        self._policy = policy
        self._stop = asyncio.Event()
        self._abort = threading.Event()
        self._pipeline = pipeline_pool(policy.max_jobs)
        attempts = AttemptPolicy(policy.max_attempts, policy.lease_seconds, _PROGRESS_SECONDS)
        self._attempts = AttemptRunner(store, audio, worker_id, attempts, self, self._stop)
        # Failures in a row of one message (topic, partition, offset) to an unexpected error.
        self._strikes: dict[tuple[str, int, int], int] = {}
        consumer.handle_unreadable(self._dead_letter_unreadable)

    def request_stop(self) -> None:
        """Finish (or, after the grace period, put back) the running jobs, then exit `run`."""
        self._stop.set()

    async def run(self) -> None:
        """Load the models, then consume until `request_stop`; always leaves the group and
        releases the models."""
        await asyncio.to_thread(self._runner.preload, self._policy.preload)
        await self._producer.start()
        try:
            await self._consumer.start()
            log.info("worker %s: started", self.worker_id)
            sweep = asyncio.create_task(self._sweep_forever(), name="job-sweep")
            try:
                await self._consume()
            finally:
                sweep.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweep
                await self._consumer.stop()
        finally:
            await self._producer.stop()
            self._pipeline.shutdown(wait=False)
            await asyncio.to_thread(self._runner.close)
            log.info("worker %s: stopped", self.worker_id)

    async def _consume(self) -> None:
        """Keep up to `max_jobs` deliveries running, each in its own task, until stopped; after
        a fault in reading, back off before reading again. One job at a time reads with
        `next_delivery`, which finishes the previous delivery first; more read with `take`."""
        read = self._consumer.take if self._policy.max_jobs > 1 else self._consumer.next_delivery
        running: set[asyncio.Task[None]] = set()
        backoff = Backoff()
        try:
            while not self._stop.is_set():
                if not self._room_for_another(len(running)):
                    await self._first_done(running, timeout=_ROOM_POLL_SECONDS)
                    continue
                try:
                    delivery = await read(timeout_s=_POLL_SECONDS)
                except WhisperXApiError as exc:  # an unreadable message not yet dead-lettered
                    log.error("worker %s: %s", self.worker_id, exc.message)
                    await pause(backoff.failed(), self._stop)
                    continue
                backoff.succeeded()
                if delivery is not None:
                    task = asyncio.create_task(
                        self._settle(delivery), name=f"job-{delivery.message.job_id}"
                    )
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            await self._drain(running)

    def _room_for_another(self, held: int) -> bool:
        """Below `max_jobs`, and the memory budget has room for one more job (see
        `MemoryBudget.room_for_another`): a worker does not hoard messages it could not run
        now, which other workers could."""
        if held >= self._policy.max_jobs:
            return False
        budget = self._runner.admission
        return budget is None or budget.room_for_another(held)

    async def _first_done(self, running: set[asyncio.Task[None]], timeout: float) -> None:
        """Until a job ends, a stop is asked for, or `timeout` (the budget may have room by
        then: a job's audio turned out shorter than estimated, or a job was admitted)."""
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait(
            {*running, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        stopping.cancel()

    async def _settle(self, delivery: Delivery) -> None:
        """Handle one delivery; after a fault, back off and handle it again (its message stays
        uncommitted, holding back its partition's commits) until it is done or we stop."""
        backoff = Backoff()
        while not await self._handle(delivery):
            if self._stop.is_set():
                return  # left uncommitted: redelivered once this worker is gone
            delay = backoff.failed()
            log.warning(
                "job %s: trying again in %.1f s after %d failure(s) in a row",
                delivery.message.job_id,
                delay,
                backoff.failures,
            )
            await pause(delay, self._stop)

    async def _drain(self, running: set[asyncio.Task[None]]) -> None:
        """Stopping: let the running jobs finish within the grace period, then put the rest
        back (the attempt runner sees the abort) and wait for that."""
        if not running:
            return
        log.info("worker %s: stopping; waiting for %d running job(s)", self.worker_id, len(running))
        _, late = await asyncio.wait(set(running), timeout=self._policy.grace_seconds)
        if late:
            self._abort.set()
            await asyncio.gather(*late, return_exceptions=True)

    async def _handle(self, delivery: Delivery) -> bool:
        """Run the delivery; False when a fault left its message for redelivery (back off)."""
        job_id = delivery.message.job_id
        try:
            await self._run(delivery)
        except UnreadableJob as exc:  # retrying cannot help: park the message with the reason
            return await self._give_up_message(delivery, exc.message)
        except WhisperXApiError as exc:  # storage or broker trouble: the message comes back
            log.error("job %s: left for redelivery: %s", job_id, exc.message)
            return False
        except Exception as exc:
            return await self._strike(delivery, exc)
        self._strikes.pop(_place(delivery), None)
        return True

    async def _run(self, delivery: Delivery) -> None:
        job = await self._claim(delivery.message.job_id)
        if job is None or await self._attempts.run(job, self._run_pipeline, self._abort.is_set):
            await self._commit(delivery)

    async def _strike(self, delivery: Delivery, exc: Exception) -> bool:
        """An unexpected error: retried like a fault, until the same message has failed
        `max_attempts` times in a row; then it is dead-lettered."""
        place = _place(delivery)
        strikes = self._strikes.get(place, 0) + 1
        self._strikes[place] = strikes
        log.error(
            "job %s: unexpected error (%d in a row)", delivery.message.job_id, strikes, exc_info=exc
        )
        if strikes < self._policy.max_attempts:
            return False
        self._strikes.pop(place, None)
        return await self._give_up_message(delivery, f"internal error: {exc!r}")

    async def _give_up_message(self, delivery: Delivery, reason: str) -> bool:
        """Dead-letter the message with `reason` (no attempt counted), then commit it."""
        job_id = delivery.message.job_id
        try:
            await self._dead_letter(job_id, 0, reason)
        except WhisperXApiError as exc:
            log.error("job %s: could not dead-letter its message: %s", job_id, exc.message)
            return False
        log.error("job %s: message dead-lettered: %s", job_id, reason)
        await self._commit(delivery)
        return True

    async def _dead_letter_unreadable(self, unreadable: Unreadable) -> None:
        """A message no worker of this version can read: park it with the reason and fail its
        job (named by the message key), so that nobody waits for it. Raises (and the consumer
        keeps the message) when the letter cannot be published."""
        job_id = _key_text(unreadable.key)
        reason = f"unreadable job message at {unreadable.where}: {unreadable.reason}"
        await self._dead_letter(job_id or unreadable.where, 0, reason)
        log.error("job %s: message dead-lettered: %s", job_id or "?", reason)
        if job_id is not None:
            message = f"The job's queue message cannot be read by this worker: {unreadable.reason}"
            await self._fail_unclaimed(job_id, message)

    async def _fail_unclaimed(self, job_id: str, message: str) -> None:
        """Fail a job that is queued (or whose lease lapsed); left alone when it is gone,
        finished, held by another worker, or its record cannot be read either."""
        try:
            job = await asyncio.to_thread(
                self._store.claim, self.worker_id, self._policy.lease_seconds, job_id
            )
        except UnreadableJob as exc:
            log.error("job %s: not failed: %s", job_id, exc.message)
            return
        if job is not None:
            verdict = Verdict(Action.REJECT, job.attempts, message, message, UnreadableJob.code)
            await self._attempts.carry_out(job, verdict)

    async def _claim(self, job_id: str) -> JobRecord | None:
        record = await asyncio.to_thread(self._store.get, job_id)
        if record is None or record.status.is_terminal:
            state = "gone" if record is None else record.status.value.lower()
            log.info("job %s: skipped (%s)", job_id, state)
            return None
        claimed = await asyncio.to_thread(
            self._store.claim, self.worker_id, self._policy.lease_seconds, job_id
        )
        if claimed is None:
            log.info("job %s: skipped (another worker holds it)", job_id)
        return claimed

    async def _run_pipeline(self, job: JobRecord, ctx: StageContext) -> Transcript:
        """The pipeline on a scratch copy of the job's audio, deleted afterwards."""
        workdir = self._scratch / job.id
        try:
            audio = await run_io(self._audio.download_audio, job.id, workdir / "audio")
            return await run_in(self._pipeline, self._runner.run, audio, job.spec.options, ctx)
        finally:
            await run_io(shutil.rmtree, workdir, True)

    async def retrying(self, job: JobRecord) -> None:
        """A retry is a fresh message at the back of the topic."""
        message = JobMessage(job_id=job.id, attempt=job.attempts + 1, submitted_at=time.time())
        await self._producer.publish(message)

    async def giving_up(self, job: JobRecord, verdict: Verdict) -> None:
        """Park the job on the dead-letter topic before it is failed (a crash between repeats
        the letter, never loses it)."""
        await self._dead_letter(job.id, verdict.attempt, verdict.cause)
        log.info("job %s: dead-lettered after %d attempt(s)", job.id, verdict.attempt)

    async def _dead_letter(self, job_id: str, attempts: int, reason: str) -> None:
        letter = DeadLetter(job_id=job_id, attempts=attempts, reason=reason, failed_at=time.time())
        await self._producer.publish_dead_letter(letter)

    async def _commit(self, delivery: Delivery) -> None:
        try:
            await delivery.commit()
        except CommitFailed as exc:  # the partition moved; its new owner will skip the job
            log.warning("job %s: %s", delivery.message.job_id, exc.message)

    async def _sweep_forever(self) -> None:
        """Every lease period, republish lapsed jobs; every quarter of the orphan age, delete
        orphans."""
        orphans_checked = time.monotonic()
        while True:
            await asyncio.sleep(min(self._policy.lease_seconds, self._policy.orphan_seconds / 4))
            try:
                await self._republish_lapsed()
                if time.monotonic() - orphans_checked >= self._policy.orphan_seconds / 4:
                    orphans_checked = time.monotonic()
                    await asyncio.to_thread(self._delete_orphans)
            except WhisperXApiError as exc:
                log.warning("job sweep failed: %s", exc.message)

    async def _republish_lapsed(self) -> None:
        """Jobs whose worker died after their message was committed elsewhere get a new one."""
        for job in await asyncio.to_thread(self._store.lapsed):
            await self.retrying(job)
            log.info("job %s: lease lapsed; republished", job.id)

    def _delete_orphans(self) -> None:
        """Queued jobs whose API replica died before publishing them: no worker will hear of
        them and no client has their id, so they go (audio too) instead of filling the queue."""
        for job_id in self._store.unannounced(self._policy.orphan_seconds):
            if self._store.delete(job_id):
                self._audio.delete_job(job_id)
                log.warning("job %s: deleted; its API replica stopped before queueing it", job_id)


def _place(delivery: Delivery) -> tuple[str, int, int]:
    return delivery.topic, delivery.partition, delivery.offset


def _key_text(key: bytes | None) -> str | None:
    """The job id a message key names, if it is one."""
    with contextlib.suppress(UnicodeDecodeError):
        return key.decode() if key else None
    return None
