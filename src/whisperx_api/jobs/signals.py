"""In-process wake-ups: workers learn of new jobs, waiters learn of finished ones."""

from __future__ import annotations

import asyncio

from whisperx_api.domain.job import JobRecord


class JobSignals:
    """Events keyed by job id, plus one for "work is available"."""

    def __init__(self) -> None:
        self._finished: dict[str, asyncio.Event] = {}
        self.work_available = asyncio.Event()

    def finished_event(self, job_id: str) -> asyncio.Event:
        """The event set when `job_id` reaches a terminal state."""
        return self._finished.setdefault(job_id, asyncio.Event())

    def notify_finished(self, job_id: str) -> None:
        """Wake everyone waiting on `job_id`."""
        self.finished_event(job_id).set()

    def forget(self, job_id: str) -> None:
        """Drop the job's event once nobody needs it."""
        self._finished.pop(job_id, None)


class LocalDispatch:
    """Embedded mode: a queued job wakes the in-process workers."""

    def __init__(self, signals: JobSignals) -> None:
        self._signals = signals

    async def job_queued(self, record: JobRecord) -> None:
        self._signals.work_available.set()
