"""JobService: the one path every endpoint takes — submit, status, result, cancel, wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from whisperx_api import metrics
from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import (
    Conflict,
    JobCancelled,
    JobNotReady,
    NotFound,
    Overloaded,
    SyncTimeout,
    WhisperXApiError,
    error_for_code,
)
from whisperx_api.executors import run_io
from whisperx_api.jobs.messages import load_transcript
from whisperx_api.jobs.ports import Admission, AudioIntake, Dispatcher, JobStore
from whisperx_api.jobs.signals import JobSignals, LocalDispatch

log = logging.getLogger(__name__)

_WAIT_POLL_SECONDS = 1.0
_DISCONNECT_POLL_SECONDS = 0.5
# How long a fetch holds a result while sending it: a fetch that dies (a crashed replica) lets
# go then, and the result can be fetched again.
RESULT_HOLD_SECONDS = 600.0

Disconnected = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class JobView:
    """A job plus its place in line, for status responses."""

    record: JobRecord
    queue_position: int | None


@dataclass(frozen=True, slots=True)
class TakenResult:
    """A completed job's transcript, held for one fetch (`taker`) while it is sent."""

    record: JobRecord
    transcript: Transcript
    taker: str


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Live counts for `/status`."""

    queued: int
    processing: int


class JobService:
    """Coordinates the store, the blob store and the workers for the API."""

    def __init__(
        self,
        store: JobStore,
        blobs: AudioIntake,
        admission: Admission,
        signals: JobSignals,
        *,
        max_file_size: int,
        max_queued_jobs: int,
        batch_width: int = 1,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._admission = admission
        self._signals = signals
        self._dispatcher = dispatcher or LocalDispatch(signals)
        self._max_file_size = max_file_size
        self._max_queued = max_queued_jobs
        self._batch_width = batch_width
        self._detached: set[asyncio.Task[None]] = set()

    async def submit(self, spec: JobSpec, upload: BinaryIO) -> JobRecord:
        """Store the audio, check it is audio, queue the job."""
        counts = await self.counts()
        if counts.queued >= self._max_queued:
            waiting = "1 job is" if counts.queued == 1 else f"{counts.queued} jobs are"
            raise Overloaded(f"{waiting} queued; try again later.", retry_after=30)
        spec = await run_io(self._with_resolved_model, spec)
        job_id = str(uuid.uuid4())
        record: JobRecord | None = None
        try:
            path = await run_io(self._blobs.stage_audio, job_id, upload, self._max_file_size)
            await run_io(self._admission.probe, path, spec.options)
            await run_io(self._blobs.commit_audio, job_id)
            record = await run_io(self._store.insert, job_id, spec)
            await self._dispatcher.job_queued(record)
        except BaseException:
            if record is not None:  # queued but nobody was told: take it back
                await run_io(self._store.delete, job_id)
            await run_io(self._blobs.delete_job, job_id)
            raise
        metrics.JOBS_SUBMITTED.inc()
        return record

    def _with_resolved_model(self, spec: JobSpec) -> JobSpec:
        return replace(spec, options=self._admission.check(spec.options))

    async def status(self, job_id: str, owner: str | None) -> JobView:
        """The job and, while queued, its 1-based position (a batch number when concurrent)."""
        record = await self._owned(job_id, owner)
        position = None
        if record.status is JobStatus.QUEUED:
            raw = await run_io(self._store.queue_position, job_id)
            position = None if raw is None else math.ceil(raw / self._batch_width)
        return JobView(record, position)

    async def read_result(self, job_id: str, owner: str | None) -> tuple[JobRecord, Transcript]:
        """A completed job's transcript, neither held nor deleted (a look, not a delivery)."""
        await self._owned(job_id, owner)
        delivery = await run_io(self._store.read_result, job_id)
        if delivery is None:
            raise NotFound(f"No job with id '{job_id}'.")
        if delivery.result is None:
            raise _not_ready(delivery.record)
        return delivery.record, load_transcript(delivery.result)

    async def take_result(self, job_id: str, owner: str | None) -> TakenResult:
        """A completed job's transcript, held for this fetch alone: any other fetch gets 404
        until the caller calls `release_result` (sent: deleted) or `return_result` (the render
        or the send failed: nothing is lost)."""
        await self._owned(job_id, owner)
        taker = uuid.uuid4().hex
        stored = await run_io(self._store.take_result, job_id, taker, RESULT_HOLD_SECONDS)
        if stored is None:
            raise NotFound(f"No job with id '{job_id}'.")
        if stored.result is None:
            raise _not_ready(stored.record)
        try:
            transcript = load_transcript(stored.result)
        except BaseException:
            await run_io(self._store.give_back_result, job_id, taker)
            raise
        return TakenResult(stored.record, transcript, taker)

    async def return_result(self, taken: TakenResult) -> None:
        """The taken result was not sent: it can be fetched again."""
        await run_io(self._store.give_back_result, taken.record.id, taken.taker)

    async def release_result(self, job_id: str) -> None:
        """The result went out: delete the job and its files (a second fetch answers 404)."""
        await run_io(self._store.delete, job_id)
        await run_io(self._blobs.delete_job, job_id)
        self._signals.forget(job_id)

    async def cancel(self, job_id: str, owner: str | None) -> None:
        """Cancel a queued job and delete its files; processing jobs cannot be cancelled."""
        record = await self._owned(job_id, owner)
        if not await run_io(self._store.cancel, job_id):
            current = await self._owned(job_id, owner)
            raise Conflict(f"Job '{job_id}' is {current.status.value.lower()}; cannot cancel.")
        await run_io(self._blobs.delete_job, record.id)
        metrics.job_outcome("cancelled")
        self._signals.notify_finished(job_id)

    async def wait(
        self,
        job_id: str,
        owner: str | None,
        timeout: float | None,
        disconnected: Disconnected | None = None,
    ) -> JobRecord:
        """Wait until the job is terminal; a client that goes away cancels its queued job."""
        async with contextlib.aclosing(self.watch(job_id, owner, timeout, disconnected)) as records:
            async for record in records:
                if record.status.is_terminal:
                    return record
        raise AssertionError("watch() ends with a terminal record")  # pragma: no cover

    async def watch(
        self,
        job_id: str,
        owner: str | None,
        timeout: float | None,
        disconnected: Disconnected | None = None,
    ) -> AsyncGenerator[JobRecord, None]:
        """The job now, then after each poll or wake-up, ending with its terminal state.

        Past `timeout` raises `SyncTimeout` (the job keeps running); a client that goes away
        has its queued job cancelled and gets `JobCancelled`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = await self._owned(job_id, owner)
            yield record
            if record.status.is_terminal:
                return
            if disconnected is not None and await disconnected():
                await self._abandon(job_id, owner)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise SyncTimeout(
                    f"The job did not finish within {timeout:g} s; it keeps running. "
                    f"Poll /transcription/{job_id}.",
                    job_id=job_id,
                )
            await self._sleep_until_finished(job_id, remaining, disconnected is not None)

    def abandon_soon(self, job_id: str, owner: str | None) -> None:
        """`_give_up` from code that cannot await (a response torn down mid-stream)."""
        self._detach(self._give_up(job_id, owner))

    async def stop_background(self) -> None:
        """Cancel the clean-ups still waiting (their results then go with the retention sweep)."""
        for task in list(self._detached):
            task.cancel()
        await asyncio.gather(*self._detached, return_exceptions=True)

    async def _give_up(self, job_id: str, owner: str | None) -> None:
        """Nobody will fetch this job's result: cancel it while queued; once it is processing
        (cancel refused), let it finish and delete the result then."""
        try:
            await self.cancel(job_id, owner)
        except Conflict:
            self._detach(self._discard_when_done(job_id, owner))
        except NotFound:
            pass

    async def _discard_when_done(self, job_id: str, owner: str | None) -> None:
        with contextlib.suppress(WhisperXApiError):
            record = await self.wait(job_id, owner, None)
            if record.status is JobStatus.COMPLETED:
                await self.release_result(job_id)
                log.info("job %s: result discarded; its client had gone", job_id)

    def _detach(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)

    async def wait_for_result(
        self,
        record: JobRecord,
        timeout: float | None,
        disconnected: Disconnected | None = None,
    ) -> TakenResult:
        """Wait for a just-submitted job and take its transcript (sync requests); the caller
        releases it once sent, or returns it."""
        owner = record.spec.owner
        finished = await self.wait(record.id, owner, timeout, disconnected)
        if finished.status is not JobStatus.COMPLETED:
            raise _not_ready(finished)
        return await self.take_result(record.id, owner)

    async def counts(self) -> QueueCounts:
        """Queued and processing jobs right now."""
        counts = await run_io(self._store.counts)
        return QueueCounts(counts[JobStatus.QUEUED], counts[JobStatus.PROCESSING])

    async def sweep_expired(self, older_than_seconds: float) -> list[str]:
        """Delete jobs (and files) unchanged for longer than the retention; never processing."""
        ids = await run_io(self._store.expired, time.time() - older_than_seconds)
        deleted = [job_id for job_id in ids if await run_io(self._store.delete, job_id)]
        for job_id in deleted:
            await run_io(self._blobs.delete_job, job_id)
            self._signals.forget(job_id)
        return deleted

    async def erase_owner(self, owner: str) -> tuple[int, int]:
        """Delete every job of `owner` with its files (an operator erasing a key's data):
        (deleted now, still processing). A processing job cannot be stopped; it is deleted
        with its files as soon as it ends (or, should this process stop first, by the
        retention sweep)."""
        deleted = processing = 0
        for job_id in await run_io(self._store.jobs_of, owner):
            if await run_io(self._store.delete, job_id):
                await run_io(self._blobs.delete_job, job_id)
                self._signals.forget(job_id)
                deleted += 1
            elif await run_io(self._store.get, job_id) is not None:  # processing
                self._detach(self._delete_when_done(job_id))
                processing += 1
        return deleted, processing

    async def _delete_when_done(self, job_id: str) -> None:
        with contextlib.suppress(WhisperXApiError):
            await self.wait(job_id, None, None)
            await self.release_result(job_id)

    async def _owned(self, job_id: str, owner: str | None) -> JobRecord:
        record = await run_io(self._store.get, job_id)
        if record is None or (owner is not None and record.spec.owner != owner):
            raise NotFound(f"No job with id '{job_id}'.")
        return record

    async def _abandon(self, job_id: str, owner: str | None) -> None:
        await self._give_up(job_id, owner)
        raise JobCancelled("The client disconnected; the job was cancelled.")

    async def _sleep_until_finished(
        self, job_id: str, remaining: float | None, watch_client: bool
    ) -> None:
        poll = _DISCONNECT_POLL_SECONDS if watch_client else _WAIT_POLL_SECONDS
        delay = poll if remaining is None else min(poll, remaining)
        event = self._signals.finished_event(job_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), delay)
        event.clear()


def _not_ready(record: JobRecord) -> WhisperXApiError:
    if record.status is JobStatus.FAILED:
        return error_for_code(record.error_code, record.error or "The job failed.")
    if record.status is JobStatus.CANCELLED:
        return JobCancelled(f"Job '{record.id}' was cancelled.")
    return JobNotReady(
        f"Job '{record.id}' is {record.status.value.lower()}; the result is not ready."
    )
