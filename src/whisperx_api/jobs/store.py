"""The SQLite job store (`JobStore`): WAL mode; every move under `BEGIN IMMEDIATE`.

A move reads the row, applies the pure transition (`domain.transitions`) and writes the result
back with `WHERE status = ?`, all in one transaction, so two processes never both move a job.

Faults. Every transaction that fails (a full disk, an I/O error, a failed COMMIT) is rolled back
before the error leaves, so the shared connection is never left inside a transaction and works
again once the cause is gone. SQLite's errors leave as `StorageFull` (the disk or database is
full: 507) or `StorageError`. A job whose stored spec this build cannot read (written by another
version, or damaged) is failed with `unreadable_job` when a worker would claim it, instead of
blocking the queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transitions import (
    cancelled,
    claimed,
    completed,
    failed,
    given_back,
    progressed,
    renewed,
    requeued,
    taken,
)
from whisperx_api.domain.voices import SavedVoice
from whisperx_api.domain.webhook import WebhookState
from whisperx_api.errors import Conflict, IllegalMove, StorageError, StorageFull, UnreadableJob
from whisperx_api.jobs.messages import dump_spec, dump_voice, load_spec, load_voice
from whisperx_api.jobs.ports import StoredResult
from whisperx_api.storage.private import private_dir, private_file

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
-- Saved voices: one row per voice, its embedding in `body` (never audio).
CREATE TABLE IF NOT EXISTS voices (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS voices_by_owner ON voices (owner, created_at);
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
_Move = Callable[[JobRecord], JobRecord]


def _private_database(path: Path) -> None:
    """The database 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
    database's mode. Those left by an older version are made 0600 too."""
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            private_file(side)


class SqliteJobStore:
    """All job state for one data directory; safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        _private_database(path)
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.executescript(_SCHEMA)
        self._add_missing_columns()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def _add_missing_columns(self) -> None:
        with self._tx(immediate=True) as db:
            present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in present:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def insert(self, job_id: str, spec: JobSpec, now: float | None = None) -> JobRecord:
        created = _now(now)
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
        at = _now(now)
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

    def renew(
        self, job_id: str, worker: str | None, lease_seconds: float, now: float | None = None
    ) -> bool:
        return self._applied(job_id, lambda r: renewed(r, worker, lease_seconds, _now(now)))

    def set_progress(
        self, job_id: str, worker: str | None, progress: float, text_so_far: str | None = None
    ) -> None:
        self._applied(job_id, lambda r: progressed(r, worker, progress, text_so_far))

    def complete(
        self, job_id: str, worker: str | None, result: str, now: float | None = None
    ) -> bool:
        return self._applied(job_id, lambda r: completed(r, worker, _now(now)), result)

    def fail(
        self,
        job_id: str,
        worker: str | None,
        error: str,
        code: str | None,
        now: float | None = None,
    ) -> bool:
        return self._applied(job_id, lambda r: failed(r, worker, error, code, _now(now)))

    def requeue(
        self, job_id: str, worker: str | None, error: str | None = None, *, uncount: bool = False
    ) -> bool:
        return self._applied(job_id, lambda r: requeued(r, worker, error, uncount=uncount))

    def cancel(self, job_id: str, now: float | None = None) -> bool:
        return self._applied(job_id, lambda r: cancelled(r, _now(now)))

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
            held = _moved(db, record, lambda r: taken(r, taker, hold_seconds, _now(now)))
            if held is None:
                return None
            row = db.execute("SELECT result FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return StoredResult(held, row[0])

    def give_back_result(self, job_id: str, taker: str) -> bool:
        return self._applied(job_id, lambda r: given_back(r, taker))

    def lapsed(self, now: float | None = None) -> list[JobRecord]:
        """Processing jobs whose lease ended by `now`, oldest first (the embedded pool asks
        with `inf` at startup: whatever is left processing, its worker is gone)."""
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE status = ? "
                "AND (lease_until IS NULL OR lease_until <= ?) ORDER BY seq",
                (JobStatus.PROCESSING.value, _now(now)),
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
        at = _now(now)
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

    def _applied(self, job_id: str, move: _Move, result: str | None = None) -> bool:
        """Apply `move` to the job in one transaction; False when there is none or the move
        is refused."""
        with self._tx(immediate=True) as db:
            record = _read(db, job_id)
            return record is not None and _moved(db, record, move, result) is not None

    def add_voice(self, voice: SavedVoice, limit: int) -> bool:
        with self._tx(immediate=True) as db:
            held = db.execute("SELECT COUNT(*) FROM voices WHERE owner = ?", (voice.owner,))
            if int(held.fetchone()[0]) >= limit:
                return False
            if db.execute("SELECT 1 FROM voices WHERE id = ?", (voice.id,)).fetchone():
                raise Conflict(f"Voice '{voice.id}' already exists.")
            db.execute(
                "INSERT INTO voices (id, owner, created_at, body) VALUES (?, ?, ?, ?)",
                (voice.id, voice.owner, voice.created_at, dump_voice(voice)),
            )
        return True

    def get_voice(self, owner: str, voice_id: str) -> SavedVoice | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT body FROM voices WHERE id = ? AND owner = ?", (voice_id, owner)
            ).fetchone()
        return None if row is None else load_voice(row[0])

    def list_voices(self, owner: str) -> list[SavedVoice]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT body FROM voices WHERE owner = ? ORDER BY created_at, id", (owner,)
            ).fetchall()
        return [load_voice(row[0]) for row in rows]

    def delete_voice(self, owner: str, voice_id: str) -> bool:
        with self._tx() as db:
            gone = db.execute("DELETE FROM voices WHERE id = ? AND owner = ?", (voice_id, owner))
            return gone.rowcount > 0

    def delete_voices(self, owner: str) -> list[str]:
        with self._tx(immediate=True) as db:
            rows = db.execute(
                "SELECT id FROM voices WHERE owner = ? ORDER BY created_at, id", (owner,)
            )
            ids = [row[0] for row in rows.fetchall()]
            db.execute("DELETE FROM voices WHERE owner = ?", (owner,))
        return ids

    @contextmanager
    def _tx(self, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; whatever fails in it (COMMIT included) is rolled back, so the
        connection is never left inside a transaction (every later call would fail)."""
        with self._lock, _translated():
            conn = self._conn
            self._roll_back()  # a transaction an earlier fault left open
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise

    def _roll_back(self) -> None:
        """End the open transaction, if any (SQLite ends some on its own, e.g. on SQLITE_FULL);
        a rollback that fails too is logged: the original error is the one to report."""
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("job store: rollback failed")


def _moved(
    db: sqlite3.Connection, before: JobRecord, move: _Move, result: str | None = None
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


def _now(now: float | None) -> float:
    return time.time() if now is None else now


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


@contextmanager
def _translated() -> Iterator[None]:
    """SQLite's errors as the package's: a full disk or database is `StorageFull`."""
    try:
        yield
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        if name == "SQLITE_FULL":
            raise StorageFull(
                "The server's job storage is full; try again once space has been freed."
            ) from exc
        raise StorageError(f"The job database failed ({name}).") from exc


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
