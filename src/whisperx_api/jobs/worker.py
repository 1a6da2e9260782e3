"""The in-process worker pool: claims jobs in FIFO order and runs the pipeline off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from whisperx_api import metrics
from whisperx_api.domain.job import JobRecord
from whisperx_api.errors import WorkerLost
from whisperx_api.executors import pipeline_pool, run_in, run_io
from whisperx_api.jobs.messages import dump_transcript
from whisperx_api.jobs.progress import ThrottledProgress
from whisperx_api.jobs.retry import Action, Verdict, settle
from whisperx_api.jobs.signals import JobSignals
from whisperx_api.jobs.store import SqliteJobStore
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.storage.local import LocalBlobStore

log = logging.getLogger(__name__)

_IDLE_POLL_SECONDS = 1.0
_PROGRESS_INTERVAL_SECONDS = 0.5


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
        self._signals.work_available.set()
        _, pending = (
            await asyncio.wait(self._tasks, timeout=grace_seconds) if self._tasks else ((), ())
        )
        if pending:
            self._abort.set()
            await asyncio.wait(pending)
        self._pipeline.shutdown(wait=False)

    async def _loop(self) -> None:
        while not self._stopping:
            job = await run_io(self._store.claim_next)
            if job is None:
                await self._idle()
                continue
            await self._process(job)

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
        audio = self._blobs.audio_path(job.id)
        with metrics.job_running() as timer:
            try:
                transcript = await run_in(
                    self._pipeline, self._runner.run, audio, job.spec.options, ctx
                )
            except BaseException as exc:
                await run_io(self._settle_failure, job, exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                await run_io(self._store.complete, job.id, dump_transcript(transcript))
                self._blobs.delete_job(job.id)
                timer.completed(transcript.duration)
                log.info("job %s: completed", job.id)
        self._signals.notify_finished(job.id)

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
