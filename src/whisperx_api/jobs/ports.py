"""What the job service and the workers need from their collaborators; the runtime picks them.

Embedded mode: SQLite store, audio on local disk, an in-process wake-up. Kafka mode: the S3 store,
audio staged locally then kept in S3, a Kafka message per job.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.webhook import WebhookState


@dataclass(frozen=True, slots=True)
class StoredResult:
    """What `read_result` found: the job, and its transcript once it is complete."""

    record: JobRecord
    result: str | None


class JobStore(Protocol):
    """All job state, for the API and the workers alike: SQLite (embedded) or S3 (Kafka mode).

    Every move is a pure transition of `domain.transitions`, written only if the job did not
    change meanwhile; a refused move answers False (or None) and writes nothing. A worker
    claims a job under a lease (`inf`: for its lifetime) and names itself in every later move;
    a job whose lease ran out is `lapsed`, and may be claimed again (a redelivery). `now`
    defaults to the clock.
    """

    def insert(self, job_id: str, spec: JobSpec, now: float | None = None) -> JobRecord:
        """A queued job at the back of the line."""

    def get(self, job_id: str) -> JobRecord | None: ...

    def queue_position(self, job_id: str) -> int | None:
        """1-based place among queued jobs; None when not queued."""

    def counts(self) -> dict[JobStatus, int]: ...

    def cancel(self, job_id: str, now: float | None = None) -> bool:
        """Cancel a queued job; False if it is not queued."""

    def read_result(self, job_id: str) -> StoredResult | None:
        """The job and, once completed, its result; nothing is deleted or held."""

    def take_result(
        self, job_id: str, taker: str, hold_seconds: float, now: float | None = None
    ) -> StoredResult | None:
        """A completed job's result, held for the fetch `taker` while it is sent: until
        `give_back_result`, `delete` or the end of the hold, every other take answers None,
        as for no job. A job not completed: its record, no result, nothing held."""

    def give_back_result(self, job_id: str, taker: str) -> bool:
        """End `taker`'s hold (its send failed), so the result can be taken again."""

    def expired(self, before: float) -> list[str]:
        """Jobs last changed (finished, else created) before `before`, neither processing nor
        owing a webhook."""

    def delete(self, job_id: str) -> bool:
        """Remove a job that is not processing (a pending webhook outlives it)."""

    def jobs_of(self, owner: str) -> list[str]:
        """The ids of every job `owner` submitted, in any status (for erasing a key's data)."""

    def close(self) -> None: ...

    def claim(
        self, worker: str, lease_seconds: float, job_id: str | None = None, now: float | None = None
    ) -> JobRecord | None:
        """`job_id` (else the oldest queued job) to Processing under `worker`'s lease; a job
        held under a lapsed lease is taken over. None if there is nothing to take."""

    def renew(
        self, job_id: str, worker: str | None, lease_seconds: float, now: float | None = None
    ) -> bool:
        """Extend the holder's lease; False once `worker` no longer holds the job."""

    def set_progress(
        self, job_id: str, worker: str | None, progress: float, text_so_far: str | None = None
    ) -> None:
        """How far the holder's attempt is, and the text decoded so far."""

    def complete(
        self, job_id: str, worker: str | None, result: str, now: float | None = None
    ) -> bool:
        """The holder's result, stored once; False if `worker` no longer holds the job."""

    def fail(
        self,
        job_id: str,
        worker: str | None,
        error: str,
        code: str | None,
        now: float | None = None,
    ) -> bool:
        """Fail the holder's job for good."""

    def requeue(
        self, job_id: str, worker: str | None, error: str | None = None, *, uncount: bool = False
    ) -> bool:
        """Put the holder's job back in its place in line; `uncount` forgives the attempt."""

    def lapsed(self, now: float | None = None) -> list[JobRecord]:
        """Processing jobs whose lease ended by `now`, oldest first."""

    def claim_due_webhooks(
        self, token: str, lease_seconds: float, now: float | None = None, limit: int = 16
    ) -> list[tuple[str, WebhookState]]:
        """Own the next attempt of up to `limit` due webhooks for `lease_seconds`; a claim
        whose owner vanished falls due again when its lease ends."""

    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool:
        """Record an attempt's outcome if `token` still owns it."""


class AudioIntake(Protocol):
    """Where uploads go: staged on local disk to be checked, then committed for the workers."""

    def stage_audio(self, job_id: str, source: BinaryIO, max_bytes: int) -> Path:
        """Stream the upload to a local file (refusing more than `max_bytes`); its path."""
        ...

    def commit_audio(self, job_id: str) -> None:
        """Make the staged audio available to whichever worker runs the job."""
        ...

    def delete_job(self, job_id: str) -> None:
        """Remove every copy of the job's audio."""
        ...


class Admission(Protocol):
    """Submit-time checks: the options a worker will accept, and that the upload is audio."""

    def check(self, options: TranscriptionOptions) -> TranscriptionOptions: ...

    def probe(self, audio_path: Path, options: TranscriptionOptions | None = None) -> None: ...


class Dispatcher(Protocol):
    """Tells the workers that a job is waiting."""

    async def job_queued(self, record: JobRecord) -> None: ...


class Background(Protocol):
    """What runs beside the API for the runtime's lifetime (workers, a producer)."""

    async def start(self) -> None: ...

    async def stop(self, grace_seconds: float) -> None: ...


@runtime_checkable
class Monitored(Protocol):
    """Background work that can tell when a loop of it has stopped for good (for `/health`)."""

    def problems(self) -> list[str]:
        """One line per loop that ended while it should be running; empty when healthy."""
        ...


def ended_task(task: asyncio.Task[None]) -> str:
    """How a background task that should still be running ended, for `Monitored.problems`."""
    if task.cancelled():
        return f"{task.get_name()} was cancelled"
    exc = task.exception()
    return f"{task.get_name()} stopped" if exc is None else f"{task.get_name()} died: {exc!r}"
