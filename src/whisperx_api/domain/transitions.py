"""A job's moves as pure functions on `JobRecord`; both job stores persist what they return.

Every move passes `LEGAL_TRANSITIONS`, and a worker's moves also need the worker to hold the
job (Processing under its name). A refused move raises `IllegalMove`, which a store answers as
"not done" (False or None) without writing. The stores add only the conditional write that
makes a move decided on a stale record fail: SQLite's `UPDATE ... WHERE status = ?` inside one
transaction, S3's `IfMatch` PUT.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from whisperx_api.domain.job import LEGAL_TRANSITIONS, JobRecord, JobStatus
from whisperx_api.domain.webhook import ended
from whisperx_api.errors import IllegalMove


def moved(record: JobRecord, to: JobStatus, **changes: Any) -> JobRecord:
    """`record` in status `to` with `changes`, if the table allows the move."""
    if to not in LEGAL_TRANSITIONS[record.status]:
        raise IllegalMove(f"job {record.id}: {record.status.value} -> {to.value}")
    return replace(record, status=to, **changes)


def lapsed(record: JobRecord, now: float) -> bool:
    """Processing under a lease that ended at or before `now` (its worker is presumed dead)."""
    return record.status is JobStatus.PROCESSING and (
        record.lease_until is None or record.lease_until <= now
    )


def holds(record: JobRecord, worker: str | None) -> bool:
    """Processing under `worker`'s name (None: a job claimed before workers were named)."""
    return record.status is JobStatus.PROCESSING and record.worker == worker


def claimed(record: JobRecord, worker: str, lease_seconds: float, now: float) -> JobRecord:
    """Queued, or Processing under a lapsed lease (a redelivery), to Processing under
    `worker`'s lease; the attempt is counted."""
    if record.status is JobStatus.PROCESSING and not lapsed(record, now):
        raise IllegalMove(f"job {record.id}: held by {record.worker} under a live lease")
    return moved(
        record,
        JobStatus.PROCESSING,
        attempts=record.attempts + 1,
        started_at=now,
        progress=0.0,
        text_so_far=None,
        worker=worker,
        lease_until=now + lease_seconds,
    )


def renewed(record: JobRecord, worker: str | None, lease_seconds: float, now: float) -> JobRecord:
    """The holder's lease, extended to `now + lease_seconds`."""
    return replace(_held(record, worker), lease_until=now + lease_seconds)


def progressed(
    record: JobRecord, worker: str | None, progress: float, text_so_far: str | None
) -> JobRecord:
    """How far the holder's attempt is, and the text decoded so far."""
    return replace(_held(record, worker), progress=progress, text_so_far=text_so_far)


def requeued(
    record: JobRecord, worker: str | None, error: str | None, *, uncount: bool = False
) -> JobRecord:
    """Back in line (in its old place); `uncount` forgives the attempt (a shutdown)."""
    attempts = record.attempts - 1 if uncount else record.attempts
    return moved(
        _held(record, worker),
        JobStatus.QUEUED,
        error=error,
        progress=None,
        text_so_far=None,
        started_at=None,
        attempts=attempts,
        worker=None,
        lease_until=None,
    )


def completed(record: JobRecord, worker: str | None, now: float) -> JobRecord:
    """The holder's attempt produced the result."""
    return _ended(_held(record, worker), JobStatus.COMPLETED, now, progress=1.0)


def failed(
    record: JobRecord, worker: str | None, error: str, code: str | None, now: float
) -> JobRecord:
    """Failed for good: by the worker that holds it, or (`worker` None) unread while queued."""
    if worker is not None or record.status is not JobStatus.QUEUED:
        _held(record, worker)
    return _ended(record, JobStatus.FAILED, now, error=error, error_code=code)


def cancelled(record: JobRecord, now: float) -> JobRecord:
    """A queued job, cancelled by its client."""
    return _ended(record, JobStatus.CANCELLED, now, progress=None)


def taken(record: JobRecord, taker: str, hold_seconds: float, now: float) -> JobRecord:
    """A completed job's result, held by the fetch `taker` while it is sent, so that no other
    fetch sends it too; refused while another fetch's hold is live. The job stays Completed,
    and `worker`/`lease_until` name the fetch and its hold (a fetch that died lets go then)."""
    if record.status is not JobStatus.COMPLETED:
        raise IllegalMove(f"job {record.id}: {record.status.value} has no result to take")
    if record.worker is not None and (record.lease_until is None or record.lease_until > now):
        raise IllegalMove(f"job {record.id}: its result is being sent by {record.worker}")
    return replace(record, worker=taker, lease_until=now + hold_seconds)


def given_back(record: JobRecord, taker: str) -> JobRecord:
    """The fetch `taker` could not send the result: another fetch may take it."""
    if record.status is not JobStatus.COMPLETED or record.worker != taker:
        raise IllegalMove(f"job {record.id}: its result is not held by {taker}")
    return replace(record, worker=None, lease_until=None)


def _held(record: JobRecord, worker: str | None) -> JobRecord:
    if not holds(record, worker):
        raise IllegalMove(f"job {record.id}: not held by {worker}")
    return record


def _ended(record: JobRecord, status: JobStatus, now: float, **changes: Any) -> JobRecord:
    """Terminal, with the webhook it owes (if it asked for one) in the same record."""
    done = moved(
        record,
        status,
        finished_at=now,
        text_so_far=None,
        worker=None,
        lease_until=None,
        **changes,
    )
    return replace(done, webhook=ended(done, now))
