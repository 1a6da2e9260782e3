"""The moves both job stores make the same way: a pure transition of `domain.transitions`,
applied by the store's own `_applied` (one SQLite transaction; S3's compare-and-swap)."""

from __future__ import annotations

import time
from collections.abc import Callable

from whisperx_api.domain.job import JobRecord
from whisperx_api.domain.transitions import (
    cancelled,
    completed,
    failed,
    given_back,
    progressed,
    renewed,
    requeued,
)

Move = Callable[[JobRecord], JobRecord]


def now_or(now: float | None) -> float:
    """`now`, or the clock's time."""
    return time.time() if now is None else now


class StoreMoves:
    """The `JobStore` moves that differ between stores only in how a move is written."""

    def _applied(self, job_id: str, move: Move, result: str | None = None) -> bool:
        """Apply `move` to the job (storing `result` with it); False when there is no job or
        the move is refused."""
        raise NotImplementedError

    def renew(
        self, job_id: str, worker: str | None, lease_seconds: float, now: float | None = None
    ) -> bool:
        return self._applied(job_id, lambda r: renewed(r, worker, lease_seconds, now_or(now)))

    def set_progress(
        self, job_id: str, worker: str | None, progress: float, text_so_far: str | None = None
    ) -> None:
        self._applied(job_id, lambda r: progressed(r, worker, progress, text_so_far))

    def complete(
        self, job_id: str, worker: str | None, result: str, now: float | None = None
    ) -> bool:
        return self._applied(job_id, lambda r: completed(r, worker, now_or(now)), result)

    def fail(
        self,
        job_id: str,
        worker: str | None,
        error: str,
        code: str | None,
        now: float | None = None,
    ) -> bool:
        return self._applied(job_id, lambda r: failed(r, worker, error, code, now_or(now)))

    def requeue(
        self, job_id: str, worker: str | None, error: str | None = None, *, uncount: bool = False
    ) -> bool:
        return self._applied(job_id, lambda r: requeued(r, worker, error, uncount=uncount))

    def cancel(self, job_id: str, now: float | None = None) -> bool:
        return self._applied(job_id, lambda r: cancelled(r, now_or(now)))

    def give_back_result(self, job_id: str, taker: str) -> bool:
        return self._applied(job_id, lambda r: given_back(r, taker))
