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
    a job whose lease ran out is `lapsed`, and may be claimed again (a redelivery).
    """

    # -- the API side --------------------------------------------------------------------------
    def insert(self, job_id: str, spec: JobSpec, now: float | None = None) -> JobRecord: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def queue_position(self, job_id: str) -> int | None: ...

    def counts(self) -> dict[JobStatus, int]: ...

    def cancel(self, job_id: str, now: float | None = None) -> bool: ...

    def read_result(self, job_id: str) -> StoredResult | None: ...

    def expired(self, before: float) -> list[str]: ...

    def delete(self, job_id: str) -> bool: ...

    def close(self) -> None: ...

    # -- the worker side -----------------------------------------------------------------------
    def claim(
        self,
        worker: str,
        lease_seconds: float,
        job_id: str | None = None,
        now: float | None = None,
    ) -> JobRecord | None:
        """`job_id` (else the oldest queued job) to Processing under `worker`'s lease."""
        ...

    def renew(
        self, job_id: str, worker: str | None, lease_seconds: float, now: float | None = None
    ) -> bool: ...

    def set_progress(
        self, job_id: str, worker: str | None, progress: float, text_so_far: str | None = None
    ) -> None: ...

    def complete(
        self, job_id: str, worker: str | None, result: str, now: float | None = None
    ) -> bool: ...

    def fail(
        self,
        job_id: str,
        worker: str | None,
        error: str,
        code: str | None,
        now: float | None = None,
    ) -> bool: ...

    def requeue(
        self, job_id: str, worker: str | None, error: str | None = None, *, uncount: bool = False
    ) -> bool: ...

    def lapsed(self, now: float | None = None) -> list[JobRecord]:
        """Processing jobs whose lease ended by `now`, oldest first."""
        ...

    # -- the webhook outbox --------------------------------------------------------------------
    def claim_due_webhooks(
        self, token: str, lease_seconds: float, now: float | None = None, limit: int = 16
    ) -> list[tuple[str, WebhookState]]: ...

    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool: ...


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

    def probe(self, audio_path: Path) -> None: ...


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
