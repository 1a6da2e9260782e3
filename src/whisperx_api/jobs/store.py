"""The SQLite job store (`JobStore`): every move under `BEGIN IMMEDIATE`.

A move reads the row, applies the pure transition (`domain.transitions`) and writes the result
back with `WHERE status = ?`, all in one transaction, so two processes never both move a job.

Faults: see `storage.sqlite` (a failed transaction is rolled back; errors leave as
`StorageFull` or `StorageError`). A job whose stored spec this build cannot read (written by
another version, or damaged) is failed with `unreadable_job` when a worker would claim it,
instead of blocking the queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transitions import claimed, failed, taken
from whisperx_api.domain.webhook import WebhookState
from whisperx_api.errors import Conflict, IllegalMove, UnreadableJob
from whisperx_api.jobs.messages import dump_spec, load_spec
from whisperx_api.jobs.moves import Move, StoreMoves, now_or
from whisperx_api.jobs.ports import StoredResult
from whisperx_api.storage.sqlite import SqliteDatabase

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    owner TEXT,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    progress REAL,
    text_so_far TEXT,
    error TEXT,
    error_code TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    result TEXT,
    worker TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
-- One row per ended job that asked for a webhook; it outlives the job while still pending.
-- `due` is when the next attempt may start (NULL once delivered or given up).
CREATE TABLE IF NOT EXISTS webhooks (
    job_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    due REAL
);
CREATE INDEX IF NOT EXISTS webhooks_by_due ON webhooks (due);
"""

# Read in this order: `JobRecord`'s names, and the owner (kept for an unreadable spec).
_COLUMNS = (
    "id, status, spec, created_at, attempts, progress, text_so_far, error, error_code, "
    "started_at, finished_at, owner, worker, lease_until"
)
_FIELDS = tuple(_COLUMNS.split(", "))
# What a move may change: all but the job's identity and request.
_MOVED = tuple(name for name in _FIELDS if name not in {"id", "spec", "created_at", "owner"})
# Columns added after the first release, for stores created before them.
_ADDED_COLUMNS = {"text_so_far": "TEXT", "worker": "TEXT", "lease_until": "REAL"}


class SqliteJobStore(SqliteDatabase, StoreMoves):
    """All job state for one data directory; safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        with self._tx(immediate=True) as db:
            present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in present:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def insert(self, job_id: str, spec: JobSpec, now: float | None = None) -> JobRecord:
        created = now_or(now)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone():
                raise Conflict(f"Job '{job_id}' already exists.")
            db.execute(
                "INSERT INTO jobs (id, owner, status, spec, created_at) VALUES (?, ?, ?, ?, ?)",
                (job_id, spec.owner, JobStatus.QUEUED.value, dump_spec(spec), created),
            )
        return JobRecord(id=job_id, status=JobStatus.QUEUED, spec=spec, created_at=created)

    def get(self, job_id: str) -> JobRecord | None:
        with self._tx() as db:
            return _read(db, job_id)

    def queue_position(self, job_id: str) -> int | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = ? AND seq <= "
                "(SELECT seq FROM jobs WHERE id = ? AND status = ?)",
                (JobStatus.QUEUED.value, job_id, JobStatus.QUEUED.value),
            ).fetchone()
        return int(row[0]) or None

    def counts(self) -> dict[JobStatus, int]:
        with self._tx() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        counts = dict.fromkeys(JobStatus, 0)
        counts.update({JobStatus(s): int(n) for s, n in rows})
        return counts

    def claim(
        self,
        worker: str,
        lease_seconds: float,
        job_id: str | None = None,
        now: float | None = None,
    ) -> JobRecord | None:
        """A job whose spec cannot be read is failed on the way (`unreadable_job`): it could
        never run, and left queued it would hold up every job behind it."""
        at = now_or(now)
        where, params = (
            ("status = ?", (JobStatus.QUEUED.value,))
            if job_id is None
            else ("id = ? AND status IN (?, ?)", (job_id, *_LIVE))
        )
        with self._tx(immediate=True) as db:
            while True:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE {where} ORDER BY seq LIMIT 1", params
                ).fetchone()
                if row is None:
                    return None
                record = _record(row)
                problem = _spec_problem(row[2])
                if problem is None:
                    return _moved(db, record, lambda r: claimed(r, worker, lease_seconds, at))
                log.error("job %s: failed: %s", record.id, problem)
                _write(db, record, failed(record, None, problem, UnreadableJob.code, at))

    def read_result(self, job_id: str) -> StoredResult | None:
        with self._tx() as db:
            record = _read(db, job_id)
            row = db.execute("SELECT result FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if record is None:
            return None
        return StoredResult(record, row[0] if record.status is JobStatus.COMPLETED else None)

    def take_result(
        self, job_id: str, taker: str, hold_seconds: float, now: float | None = None
    ) -> StoredResult | None:
        with self._tx(immediate=True) as db:
            record = _read(db, job_id)
            if record is None or record.status is not JobStatus.COMPLETED:
                return None if record is None else StoredResult(record, None)
            held = _moved(db, record, lambda r: taken(r, taker, hold_seconds, now_or(now)))
            if held is None:
                return None
            row = db.execute("SELECT result FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return StoredResult(held, row[0])

    def lapsed(self, now: float | None = None) -> list[JobRecord]:
        """Processing jobs whose lease ended by `now`, oldest first (the embedded pool asks
        with `inf` at startup: whatever is left processing, its worker is gone)."""
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE status = ? "
                "AND (lease_until IS NULL OR lease_until <= ?) ORDER BY seq",
                (JobStatus.PROCESSING.value, now_or(now)),
            ).fetchall()
        return [_record(row) for row in rows]

    def expired(self, before: float) -> list[str]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE COALESCE(finished_at, created_at) < ? "
                "AND status != ? AND id NOT IN "
                "(SELECT job_id FROM webhooks WHERE due IS NOT NULL)",
                (before, JobStatus.PROCESSING.value),
            ).fetchall()
        return [r[0] for r in rows]

    def delete(self, job_id: str) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM jobs WHERE id = ? AND status != ?",
                (job_id, JobStatus.PROCESSING.value),
            )
            if cur.rowcount > 0:
                _drop_settled_webhook(db, job_id)
        return cur.rowcount > 0

    def jobs_of(self, owner: str) -> list[str]:
        with self._tx() as db:
            rows = db.execute("SELECT id FROM jobs WHERE owner = ? ORDER BY seq", (owner,))
            return [row[0] for row in rows.fetchall()]

    # -- webhooks: the outbox of the delivery loop ---------------------------------------------

    def claim_due_webhooks(
        self, token: str, lease_seconds: float, now: float | None = None, limit: int = 16
    ) -> list[tuple[str, WebhookState]]:
        at = now_or(now)
        claimed_hooks: list[tuple[str, WebhookState]] = []
        with self._tx(immediate=True) as db:
            rows = db.execute(
                "SELECT job_id, state FROM webhooks WHERE due IS NOT NULL AND due <= ? "
                "ORDER BY due LIMIT ?",
                (at, limit),
            ).fetchall()
            for job_id, raw in rows:
                state = _load_webhook(raw).claimed(token, at + lease_seconds)
                _write_webhook(db, job_id, state)
                claimed_hooks.append((job_id, state))
        return claimed_hooks

    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool:
        """A settled webhook whose job is gone is dropped."""
        with self._tx(immediate=True) as db:
            current = _webhook_row(db, job_id)
            if current is None or current.claim != token:
                return False
            _write_webhook(db, job_id, state)
            if not state.pending:
                exists = db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone()
                if exists is None:
                    db.execute("DELETE FROM webhooks WHERE job_id = ?", (job_id,))
        return True

    def _applied(self, job_id: str, move: Move, result: str | None = None) -> bool:
        """In one transaction."""
        with self._tx(immediate=True) as db:
            record = _read(db, job_id)
            return record is not None and _moved(db, record, move, result) is not None


def _moved(
    db: sqlite3.Connection, before: JobRecord, move: Move, result: str | None = None
) -> JobRecord | None:
    """What `move` makes of `before`, written; None when the move is refused."""
    try:
        after = move(before)
    except IllegalMove:
        return None
    return _write(db, before, after, result)


def _write(
    db: sqlite3.Connection, before: JobRecord, after: JobRecord, result: str | None = None
) -> JobRecord | None:
    """`after`, if the row is still in `before`'s status; the webhook a terminal move attaches
    goes in the same transaction."""
    changes = {name: getattr(after, name) for name in _MOVED} | {"status": after.status.value}
    if result is not None:
        changes["result"] = result
    cur = db.execute(
        f"UPDATE jobs SET {', '.join(f'{n} = ?' for n in changes)} WHERE id = ? AND status = ?",
        (*changes.values(), before.id, before.status.value),
    )
    if cur.rowcount == 0:
        return None
    if after.webhook is not None and after.webhook is not before.webhook:
        _write_webhook(db, after.id, after.webhook)
    return after


def _read(db: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else replace(_record(row), webhook=_webhook_row(db, job_id))


_LIVE = (JobStatus.QUEUED.value, JobStatus.PROCESSING.value)


def _webhook_row(db: sqlite3.Connection, job_id: str) -> WebhookState | None:
    row = db.execute("SELECT state FROM webhooks WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else _load_webhook(row[0])


def _load_webhook(raw: str) -> WebhookState:
    return WebhookState.from_json(json.loads(raw))


def _write_webhook(db: sqlite3.Connection, job_id: str, state: WebhookState) -> None:
    due = state.next_at if state.pending else None
    db.execute(
        "INSERT INTO webhooks (job_id, state, due) VALUES (?, ?, ?) "
        "ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, due = excluded.due",
        (job_id, json.dumps(state.to_json()), due),
    )


def _drop_settled_webhook(db: sqlite3.Connection, job_id: str) -> None:
    """The job is gone: its webhook row goes too, unless a delivery is still pending."""
    db.execute("DELETE FROM webhooks WHERE job_id = ? AND due IS NULL", (job_id,))


def _spec_problem(text: str) -> str | None:
    """Why a stored spec cannot be read, or None when it can."""
    try:
        load_spec(text)
    except Exception as exc:  # any parse failure: a version, a shape or a value it does not know
        return f"The job's stored request cannot be read by this server ({exc!r})."
    return None


def _spec_or_placeholder(text: str, owner: str | None) -> JobSpec:
    """The spec; an unreadable one (failed by `claim`) reads as a bare spec with its owner,
    so the job's status can still be shown to the client who owns it."""
    with contextlib.suppress(Exception):
        return load_spec(text)
    return JobSpec(options=TranscriptionOptions(model="unknown"), owner=owner)


def _record(row: tuple[Any, ...]) -> JobRecord:
    fields = dict(zip(_FIELDS, row, strict=True))
    owner, spec = fields.pop("owner"), fields.pop("spec")
    status = JobStatus(fields.pop("status"))
    return JobRecord(status=status, spec=_spec_or_placeholder(spec, owner), **fields)
