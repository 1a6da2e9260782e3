"""The in-process worker pool: claims jobs in FIFO order and runs the pipeline off the loop.

Faults. Each turn of a worker's loop is guarded: an error outside the pipeline call (the store
failing in `claim_next`, `complete` or `requeue`; a bug) is logged, the worker backs off
(bounded exponential, `jobs.backoff`) and goes on. Storing an outcome is tried a few times
before the attempt counts as failed; a job whose outcome could not be stored at all is left
Processing with no worker, and is settled as interrupted (retried, or failed once out of
attempts) as soon as the store answers again. A job whose spec cannot be read is failed by
`claim_next`. A worker loop that ends anyway is reported by `problems` (and `/health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import ParamSpec

from whisperx_api import metrics
from whisperx_api.domain.job import JobRecord
from whisperx_api.errors import WorkerLost
from whisperx_api.executors import pipeline_pool, run_in, run_io
from whisperx_api.jobs.backoff import Backoff, pause
from whisperx_api.jobs.messages import dump_transcript
from whisperx_api.jobs.ports import ended_task
from whisperx_api.jobs.progress import ThrottledProgress
from whisperx_api.jobs.retry import Action, Verdict, settle
from whisperx_api.jobs.signals import JobSignals
from whisperx_api.jobs.store import SqliteJobStore
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.storage.local import LocalBlobStore

log = logging.getLogger(__name__)
P = ParamSpec("P")

_IDLE_POLL_SECONDS = 1.0
_PROGRESS_INTERVAL_SECONDS = 0.5
_OUTCOME_TRIES = 4  # writes of a job's outcome before its attempt counts as failed
_STRANDED = "its worker could not record the outcome of the attempt"


class WorkerPool:
    """`size` workers sharing one store; each runs one job at a time."""

    def __init__(
        self,
        store: SqliteJobStore,
        blobs: LocalBlobStore,
        runner: PipelineRunner,
        signals: JobSignals,
        size: int,
        max_attempts: int,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._runner = runner
        self._signals = signals
        self._size = size
        self._max_attempts = max_attempts
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._abort = threading.Event()
        self._pipeline = pipeline_pool(size)  # pipeline calls only: store calls use `run_io`
        self._backoff = (backoff_base, backoff_cap)
        self._stop_event = asyncio.Event()
        # Jobs a worker of this pool holds; claims and stray recovery agree on it under the lock.
        self._held: set[str] = set()
        self._claims = threading.Lock()

    async def start(self) -> None:
        """Settle the jobs a previous run left processing, then start the workers."""
        interrupted = await run_io(self._store.interrupted)
        for job in interrupted:
            verdict = settle(WorkerLost(), job.attempts, self._max_attempts)
            await run_io(self._carry_out, job, verdict)
        if interrupted:
            log.info("recovered %d interrupted job(s)", len(interrupted))
        orphans = await run_io(self._delete_orphaned_audio)
        if orphans:
            log.info("deleted the audio of %d submit(s) a previous run never recorded", orphans)
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"worker-{i}") for i in range(self._size)
        ]

    def _delete_orphaned_audio(self) -> int:
        """Audio staged by a submit the server died in the middle of (killed before the job
        was recorded): no job will ever run it, and no sweep would find it by its record."""
        orphans = [job_id for job_id in self._blobs.job_ids() if self._store.get(job_id) is None]
        for job_id in orphans:
            self._blobs.delete_job(job_id)
        return len(orphans)

    async def stop(self, grace_seconds: float) -> None:
        """Finish running jobs within the grace period, else stop them and put them back."""
        self._stopping = True
        self._stop_event.set()
        self._signals.work_available.set()
        _, pending = (
            await asyncio.wait(self._tasks, timeout=grace_seconds) if self._tasks else ((), ())
        )
        if pending:
            self._abort.set()
            await asyncio.wait(pending)
        self._pipeline.shutdown(wait=False)

    def problems(self) -> list[str]:
        """Why a worker loop is no longer running, one line each (none while all run, or once
        `stop` was asked for)."""
        if self._stopping:
            return []
        return [ended_task(task) for task in self._tasks if task.done()]

    async def _loop(self) -> None:
        """Claim and run jobs until stopped; a failed turn backs off and the loop goes on."""
        backoff = Backoff(*self._backoff)
        while not self._stopping:
            try:
                if backoff.failures:
                    await self._recover_strays()
                job = await run_io(self._claim)
                if job is None:
                    await self._idle()
                else:
                    await self._process(job)
            except Exception:
                delay = backoff.failed()
                log.exception(
                    "worker: a turn failed (%d in a row); going on in %.1f s",
                    backoff.failures,
                    delay,
                )
                await pause(delay, self._stop_event)
            else:
                backoff.succeeded()

    def _claim(self) -> JobRecord | None:
        with self._claims:
            job = self._store.claim_next()
            if job is not None:
                self._held.add(job.id)
            return job

    async def _recover_strays(self) -> None:
        """Settle the jobs left Processing that no worker of this pool holds (their outcome
        could not be stored), as if their worker had been lost."""
        for job_id in await run_io(self._settle_strays):
            self._signals.notify_finished(job_id)

    def _settle_strays(self) -> list[str]:
        with self._claims:
            strays = [job for job in self._store.interrupted() if job.id not in self._held]
            for job in strays:
                log.warning("job %s: %s; settling it", job.id, _STRANDED)
                verdict = settle(WorkerLost(_STRANDED), job.attempts, self._max_attempts)
                self._carry_out(job, verdict)
        return [job.id for job in strays]

    async def _idle(self) -> None:
        self._signals.work_available.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signals.work_available.wait(), _IDLE_POLL_SECONDS)

    async def _process(self, job: JobRecord) -> None:
        log.info("job %s: processing (attempt %d)", job.id, job.attempts)
        progress = ThrottledProgress(
            lambda fraction, text: self._store.set_progress(job.id, fraction, text),
            _PROGRESS_INTERVAL_SECONDS,
        )
        on_text = progress.text if job.spec.streamed else None
        ctx = StageContext(progress.fraction, self._abort.is_set, on_text=on_text)
        try:
            audio = self._blobs.audio_path(job.id)
            with metrics.job_running() as timer:
                try:
                    transcript = await run_in(
                        self._pipeline, self._runner.run, audio, job.spec.options, ctx
                    )
                    result = dump_transcript(transcript)
                except BaseException as exc:
                    await self._store_outcome(job, self._settle_failure, job, exc)
                    if not isinstance(exc, Exception):
                        raise
                else:
                    if await self._store_result(job, result):
                        timer.completed(transcript.duration)
        finally:
            with self._claims:
                self._held.discard(job.id)
        self._signals.notify_finished(job.id)

    async def _store_result(self, job: JobRecord, result: str) -> bool:
        """Store the transcript; when the store keeps refusing (a full disk), the attempt
        fails like any other and the job is retried (never lost). True once stored."""
        try:
            await self._store_outcome(job, self._store.complete, job.id, result)
        except Exception as exc:
            log.error("job %s: result not stored: %r", job.id, exc)
            await self._store_outcome(job, self._settle_failure, job, exc)
            return False
        await run_io(self._blobs.delete_job, job.id)
        log.info("job %s: completed", job.id)
        return True

    async def _store_outcome(
        self, job: JobRecord, write: Callable[P, object], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """`write` on the I/O pool, tried again with backoff while the store fails; raises the
        last error after `_OUTCOME_TRIES` tries (the job then waits for stray recovery)."""
        backoff = Backoff(*self._backoff)
        while True:
            try:
                await run_io(write, *args, **kwargs)
                return
            except Exception as exc:
                if backoff.failures + 1 >= _OUTCOME_TRIES:
                    raise
                delay = backoff.failed()
                log.warning(
                    "job %s: outcome not stored (%r); trying again in %.1f s", job.id, exc, delay
                )
                await pause(delay, self._stop_event)

    def _settle_failure(self, job: JobRecord, exc: BaseException) -> None:
        verdict = settle(exc, job.attempts, self._max_attempts)
        if verdict.action in (Action.RETRY, Action.GIVE_UP):
            log.error("job %s: attempt %d failed", job.id, job.attempts, exc_info=exc)
        self._carry_out(job, verdict)

    def _carry_out(self, job: JobRecord, verdict: Verdict) -> None:
        if verdict.fails:
            self._store.fail(job.id, verdict.message, verdict.code)
            self._blobs.delete_job(job.id)
            metrics.job_outcome("failed")
            log.info("job %s: failed: %s", job.id, verdict.message)
            return
        put_back = verdict.action is Action.PUT_BACK
        self._store.requeue(job.id, verdict.cause, uncount=put_back)
        if put_back:
            log.info("job %s: put back (server stopping)", job.id)
        else:
            metrics.job_outcome("retried")
            log.info("job %s: queued again after attempt %d", job.id, job.attempts)
