"""What the job service needs from its collaborators; the runtime picks the implementations.

Embedded mode: SQLite store, audio on local disk, an in-process wake-up. Kafka mode: the S3 store,
audio staged locally then kept in S3, a Kafka message per job.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.jobs.store import Delivery


class JobStore(Protocol):
    """Job state the API reads and changes (workers use the concrete stores directly)."""

    def insert(self, job_id: str, spec: JobSpec, now: float | None = None) -> JobRecord: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def queue_position(self, job_id: str) -> int | None: ...

    def counts(self) -> dict[JobStatus, int]: ...

    def cancel(self, job_id: str, now: float | None = None) -> bool: ...

    def read_result(self, job_id: str) -> Delivery | None: ...

    def expired(self, before: float) -> list[str]: ...

    def delete(self, job_id: str) -> bool: ...

    def close(self) -> None: ...


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
