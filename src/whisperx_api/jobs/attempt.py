"""One attempt at a claimed job, the same in both modes: run it, act on the verdict, record it.

The embedded pool and the Kafka worker each claim jobs their own way, then hand them here. What a
worker kind adds is its `Announcer`: the Kafka worker publishes a retried job's fresh message and
dead-letters a job that gives up; the embedded pool has no one to tell.

- A lease shorter than forever is renewed every third of its length; a job taken over by another
  worker meanwhile is stopped and abandoned (its result, if any, is refused by the store).
- What a failed attempt leads to is `jobs.retry.settle`'s verdict.
- A claim that took over a job whose last allowed attempt was lost with its worker gives up
  instead of running again.

Store faults, one policy for both modes. Progress is informative: a failed write is logged and
the job goes on. An outcome (result, failure, requeue) is written up to `OUTCOME_TRIES` times
with bounded exponential backoff; a result the store keeps refusing (a full disk) fails the
attempt like any other error, so the job is retried, never lost. When even that cannot be
written the error leaves to the worker's loop, which backs off in turn, and the job stays
Processing under its lease until it is recovered as a lost worker's (`recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, Protocol

from whisperx_api import metrics
from whisperx_api.domain.job import JobRecord
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import WhisperXApiError, WorkerLost
from whisperx_api.executors import run_io
from whisperx_api.jobs.backoff import Backoff, pause
from whisperx_api.jobs.messages import dump_transcript
from whisperx_api.jobs.ports import JobStore
from whisperx_api.jobs.progress import ThrottledProgress
from whisperx_api.jobs.retry import Action, Verdict, settle
from whisperx_api.pipeline.stage import StageContext

log = logging.getLogger(__name__)
P = ParamSpec("P")

OUTCOME_TRIES = 4  # writes of an attempt's outcome before the store fault is the loop's

Pipeline = Callable[[JobRecord, StageContext], Awaitable[Transcript]]


class Announcer(Protocol):
    """What a worker kind tells the world beside the store (the Kafka worker: its topics)."""

    async def retrying(self, job: JobRecord) -> None:
        """`job` is queued again for another attempt."""
        ...

    async def giving_up(self, job: JobRecord, verdict: Verdict) -> None:
        """`job` is about to fail for good after its last attempt."""
        ...


class Silent:
    """The embedded pool's `Announcer`: its workers find requeued jobs in the store."""

    async def retrying(self, job: JobRecord) -> None:
        return None

    async def giving_up(self, job: JobRecord, verdict: Verdict) -> None:
        return None


class AudioFiles(Protocol):
    """The job's audio, deleted once the job has ended."""

    def delete_job(self, job_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class AttemptPolicy:
    """How long a claim holds and how often it reports."""

    max_attempts: int
    lease_seconds: float = math.inf  # inf: the claim holds for the worker's lifetime
    progress_seconds: float = 0.5
    backoff_base: float = 0.5  # seconds before an outcome write is tried again
    backoff_cap: float = 30.0


class AttemptRunner:
    """Runs claimed jobs for one worker (`worker`, the name its claims are held under)."""

    def __init__(
        self,
        store: JobStore,
        audio: AudioFiles,
        worker: str,
        policy: AttemptPolicy,
        announcer: Announcer,
        stop: asyncio.Event,
    ) -> None:
        self._store = store
        self._audio = audio
        self.worker = worker
        self._policy = policy
        self._announcer = announcer
        self._stop = stop

    async def run(self, job: JobRecord, pipeline: Pipeline, abort: Callable[[], bool]) -> bool:
        """Run the job and record its outcome; False when it was put back by a shutdown (its
        Kafka message must then stay uncommitted)."""
        lost = settle(WorkerLost(), job.attempts - 1, self._policy.max_attempts)
        if lost.action is Action.GIVE_UP:  # the attempt before this claim died with its worker
            await self.carry_out(job, lost)
            return True
        log.info("job %s: processing (attempt %d)", job.id, job.attempts)
        lease_lost = threading.Event()
        keeper = asyncio.create_task(self._keep_lease(job.id, lease_lost), name="lease")
        progress = ThrottledProgress(
            lambda fraction, text: self._progress(job.id, fraction, text),
            self._policy.progress_seconds,
        )
        ctx = StageContext(
            progress.fraction,
            lambda: abort() or lease_lost.is_set(),
            on_text=progress.text if job.spec.streamed else None,
        )
        try:
            with metrics.job_running() as timer:
                try:
                    transcript = await pipeline(job, ctx)
                    result = dump_transcript(transcript)
                except BaseException as exc:
                    if lease_lost.is_set():
                        log.warning("job %s: lease lost to another worker; abandoned", job.id)
                        return True
                    verdict = await self._settle_failure(job, exc)
                    if not isinstance(exc, Exception):
                        raise
                    return verdict.action is not Action.PUT_BACK
                if await self._store_result(job, result):
                    timer.completed(transcript.duration)
                return True
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def recover(self, job: JobRecord, lost: WorkerLost | None = None) -> None:
        """Settle a job whose worker was lost (its lease lapsed) as that worker would have:
        queued again, or failed once out of attempts."""
        lost = lost or WorkerLost()
        log.warning("job %s: %s; settling it", job.id, lost.message)
        await self.carry_out(job, settle(lost, job.attempts, self._policy.max_attempts))

    async def carry_out(self, job: JobRecord, verdict: Verdict) -> None:
        """Do what `verdict` says, in the name of the job's holder."""
        if verdict.action is Action.GIVE_UP:
            await self._announcer.giving_up(job, verdict)
        if verdict.fails:
            await self._stored(
                job, self._store.fail, job.id, job.worker, verdict.message, verdict.code
            )
            await run_io(self._audio.delete_job, job.id)
            metrics.job_outcome("failed")
            log.info("job %s: failed: %s", job.id, verdict.message)
            return
        put_back = verdict.action is Action.PUT_BACK
        await self._stored(
            job, self._store.requeue, job.id, job.worker, verdict.cause, uncount=put_back
        )
        if put_back:
            log.info("job %s: put back (worker stopping)", job.id)
            return
        metrics.job_outcome("retried")
        await self._announcer.retrying(job)
        log.info("job %s: queued again after attempt %d", job.id, job.attempts)

    async def _settle_failure(self, job: JobRecord, exc: BaseException) -> Verdict:
        verdict = settle(exc, job.attempts, self._policy.max_attempts)
        if verdict.action in (Action.RETRY, Action.GIVE_UP):
            log.error("job %s: attempt %d failed", job.id, job.attempts, exc_info=exc)
        await self.carry_out(job, verdict)
        return verdict

    async def _store_result(self, job: JobRecord, result: str) -> bool:
        """Store the transcript; True once stored. A store that keeps refusing fails the
        attempt (the job is retried); a job taken over meanwhile drops the result."""
        try:
            stored = await self._stored(job, self._store.complete, job.id, job.worker, result)
        except Exception as exc:
            log.error("job %s: result not stored: %r", job.id, exc)
            await self._settle_failure(job, exc)
            return False
        if not stored:
            log.warning("job %s: finished after losing its claim; result dropped", job.id)
            return False
        await run_io(self._audio.delete_job, job.id)
        log.info("job %s: completed", job.id)
        return True

    async def _stored(
        self, job: JobRecord, write: Callable[P, bool], *args: P.args, **kwargs: P.kwargs
    ) -> bool:
        """`write` on the I/O pool, tried again with backoff while the store fails; raises the
        last error after `OUTCOME_TRIES` tries."""
        backoff = Backoff(self._policy.backoff_base, self._policy.backoff_cap)
        while True:
            try:
                return await run_io(write, *args, **kwargs)
            except Exception as exc:
                if backoff.failures + 1 >= OUTCOME_TRIES:
                    raise
                delay = backoff.failed()
                log.warning(
                    "job %s: outcome not stored (%r); trying again in %.1f s", job.id, exc, delay
                )
                await pause(delay, self._stop)

    def _progress(self, job_id: str, fraction: float, text: str | None) -> None:
        """Progress is informative: a failed write is logged, never fatal to the job."""
        try:
            self._store.set_progress(job_id, self.worker, fraction, text)
        except WhisperXApiError as exc:
            log.warning("job %s: progress not recorded: %s", job_id, exc.message)

    async def _keep_lease(self, job_id: str, lost: threading.Event) -> None:
        """Renew a finite lease every third of its length; flag the job when someone took it
        over."""
        lease = self._policy.lease_seconds
        if not math.isfinite(lease):
            return
        while True:
            await asyncio.sleep(lease / 3)
            try:
                held = await run_io(self._store.renew, job_id, self.worker, lease)
            except WhisperXApiError as exc:
                log.warning("job %s: lease renewal failed, retrying: %s", job_id, exc.message)
                continue
            if not held:
                lost.set()
                return
