"""The SQLite job store under faults: a failed transaction (COMMIT included) is rolled back, so
the shared connection keeps working once the cause is gone."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from whisperx_api.domain.job import JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.errors import StorageError, StorageFull
from whisperx_api.jobs.store import SqliteJobStore

SPEC = JobSpec(options=TranscriptionOptions(model="base"))


def failing_commits(store: SqliteJobStore) -> None:
    """Make every COMMIT that inserts a job fail, leaving SQLite's transaction open: a deferred
    foreign key that the insert (through a trigger) violates is only checked at COMMIT."""
    conn = store._conn
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE child (ref INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    conn.execute(
        "CREATE TRIGGER orphan AFTER INSERT ON jobs BEGIN INSERT INTO child VALUES (1); END"
    )


def test_a_failed_commit_is_rolled_back_and_later_calls_work(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    failing_commits(store)
    with pytest.raises(StorageError) as refused:
        store.insert("a", SPEC)
    assert refused.value.message == "The job database failed (SQLITE_CONSTRAINT_FOREIGNKEY)."
    assert not store._conn.in_transaction
    assert store.get("a") is None  # rolled back, not half-written
    store._conn.execute("DROP TRIGGER orphan")  # the cause is gone
    store.insert("b", SPEC)
    assert store.counts()[JobStatus.QUEUED] == 1


def test_a_full_database_is_storage_full_and_the_store_recovers(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    conn = store._conn
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    big = JobSpec(options=TranscriptionOptions(model="base", prompt="x" * 20_000))
    with pytest.raises(StorageFull) as full:
        store.insert("a", big)
    assert full.value.code == "insufficient_storage"
    assert not conn.in_transaction
    conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
    store.insert("a", big)
    assert store.get("a") is not None


def test_a_queued_job_with_an_unreadable_spec_is_failed_and_the_next_one_claimed(
    tmp_path: Path,
) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
        db.execute(
            "INSERT INTO jobs (id, owner, status, spec, created_at) VALUES (?, ?, ?, ?, 0)",
            ("poison", "alice", "Queued", "{not json"),
        )
    store.insert("good", SPEC)
    claimed = store.claim("w1", math.inf)
    poison = store.get("poison")
    assert claimed is not None
    assert claimed.id == "good"
    assert poison is not None
    assert (poison.status, poison.error_code, poison.spec.owner) == (
        JobStatus.FAILED,
        "unreadable_job",
        "alice",
    )
    assert poison.error is not None
    assert poison.error.startswith("The job's stored request cannot be read by this server")
