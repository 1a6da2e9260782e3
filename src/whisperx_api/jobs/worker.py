"""The in-process worker pool: claims jobs in FIFO order and runs the pipeline off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from whisperx_api import metrics
from whisperx_api.domain.job import JobRecord
from whisperx_api.errors import InvalidRequest, JobCancelled, WhisperXApiError
from whisperx_api.executors import pipeline_pool, run_in, run_io
from whisperx_api.jobs.messages import dump_transcript
from whisperx_api.jobs.progress import ThrottledProgress
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
        """Recover interrupted jobs, then start the workers."""
        requeued, failed = await run_io(self._store.recover, self._max_attempts)
        for job_id in failed:
            self._blobs.delete_job(job_id)
        if requeued or failed:
            log.info("recovered jobs: %d requeued, %d failed", len(requeued), len(failed))
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"worker-{i}") for i in range(self._size)
        ]

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
        if isinstance(exc, JobCancelled) or not isinstance(exc, Exception):
            self._store.requeue(job.id, "interrupted by shutdown", uncount=True)
            log.info("job %s: put back (server stopping)", job.id)
            return
        if isinstance(exc, InvalidRequest):
            self._fail(job, exc.message, exc.code)
            return
        reason = exc.message if isinstance(exc, WhisperXApiError) else "internal error"
        log.exception("job %s: attempt %d failed", job.id, job.attempts, exc_info=exc)
        if job.attempts >= self._max_attempts:
            self._fail(job, f"failed after {job.attempts} attempt(s): {reason}", "max_attempts")
        else:
            self._store.requeue(job.id, reason)
            metrics.job_outcome("retried")

    def _fail(self, job: JobRecord, message: str, code: str | None) -> None:
        self._store.fail(job.id, message, code)
        self._blobs.delete_job(job.id)
        metrics.job_outcome("failed")
        log.info("job %s: failed: %s", job.id, message)
