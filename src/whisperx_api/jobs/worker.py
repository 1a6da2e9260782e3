"""The in-process worker pool: claims jobs in FIFO order and runs them with `jobs.attempt`.

Its claims hold for the process's lifetime (an infinite lease): whatever a previous run left
Processing is recovered at startup as a lost worker's job.

Faults. Each turn of a worker's loop is guarded: an error outside the attempt runner's own
retries (the store failing in `claim`, an outcome that could not be stored at all, a bug) is
logged, the worker backs off (bounded exponential, `jobs.backoff`) and goes on; before its next
claim it recovers the jobs left Processing that no worker of this pool holds. A job whose spec
cannot be read is failed by `claim`. A worker loop that ends anyway is reported by `problems`
(and `/health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading

from whisperx_api.domain.job import JobRecord
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import WorkerLost
from whisperx_api.executors import pipeline_pool, run_in, run_io
from whisperx_api.jobs.attempt import AttemptPolicy, AttemptRunner, Silent
from whisperx_api.jobs.backoff import Backoff, pause
from whisperx_api.jobs.ports import JobStore, ended_task
from whisperx_api.jobs.signals import JobSignals
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.storage.local import LocalBlobStore

log = logging.getLogger(__name__)

_IDLE_POLL_SECONDS = 1.0
_STRANDED = "its worker could not record the outcome of the attempt"


class WorkerPool:
    """`size` workers sharing one store; each runs one job at a time."""

    def __init__(
        self,
        store: JobStore,
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
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._abort = threading.Event()
        self._pipeline = pipeline_pool(size)  # pipeline calls only: store calls use `run_io`
        self._stop_event = asyncio.Event()
        name, policy = f"embedded-{os.getpid()}", AttemptPolicy(max_attempts)
        self._attempts = AttemptRunner(store, blobs, name, policy, Silent(), self._stop_event)
        # Jobs a worker of this pool holds; claims and stray recovery agree on it under the lock.
        self._held: set[str] = set()
        self._claims = threading.Lock()

    async def start(self) -> None:
        """Settle the jobs a previous run left processing, then start the workers."""
        interrupted = await run_io(self._store.lapsed, math.inf)
        for job in interrupted:
            await self._attempts.recover(job)
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
        backoff = Backoff()
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
            job = self._store.claim(self._attempts.worker, math.inf)
            if job is not None:
                self._held.add(job.id)
            return job

    async def _recover_strays(self) -> None:
        """Settle the jobs left Processing that no worker of this pool holds (their outcome
        could not be stored), as if their worker had been lost."""
        for job in await run_io(self._strays):
            await self._attempts.recover(job, WorkerLost(_STRANDED))
            self._signals.notify_finished(job.id)

    def _strays(self) -> list[JobRecord]:
        """Read under the claims lock: a job of this pool is in `_held` from its claim until
        its outcome is stored, so what is Processing and not held has no worker."""
        with self._claims:
            return [job for job in self._store.lapsed(math.inf) if job.id not in self._held]

    async def _idle(self) -> None:
        self._signals.work_available.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signals.work_available.wait(), _IDLE_POLL_SECONDS)

    async def _process(self, job: JobRecord) -> None:
        try:
            await self._attempts.run(job, self._run_pipeline, self._abort.is_set)
        finally:
            with self._claims:
                self._held.discard(job.id)
        self._signals.notify_finished(job.id)

    async def _run_pipeline(self, job: JobRecord, ctx: StageContext) -> Transcript:
        audio = self._blobs.audio_path(job.id)
        return await run_in(self._pipeline, self._runner.run, audio, job.spec.options, ctx)
