"""The SQLite job store: FIFO claims, positions, transitions, delivery, recovery, expiry."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from whisperx_api.domain.job import JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.jobs.store import SqliteJobStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteJobStore:
    return SqliteJobStore(tmp_path / "jobs.sqlite3")


def spec(owner: str | None = None) -> JobSpec:
    return JobSpec(options=TranscriptionOptions(model="base"), owner=owner)


def test_fifo_claims_and_positions(store: SqliteJobStore) -> None:
    for name in ("a", "b", "c"):
        store.insert(name, spec())
    assert [store.queue_position(n) for n in ("a", "b", "c")] == [1, 2, 3]
    claimed = store.claim_next()
    assert claimed is not None
    assert claimed.id == "a"
    assert claimed.status is JobStatus.PROCESSING
    assert claimed.attempts == 1
    assert store.queue_position("a") is None
    assert [store.queue_position(n) for n in ("b", "c")] == [1, 2]


def test_concurrent_claims_never_share_a_job(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    writer = SqliteJobStore(path)
    for i in range(40):
        writer.insert(f"job-{i}", spec())
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_all() -> None:
        own = SqliteJobStore(path)
        while (job := own.claim_next()) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claim_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(f"job-{i}" for i in range(40))


def test_result_is_delivered_once(store: SqliteJobStore) -> None:
    store.insert("a", spec())
    store.claim_next()
    early = store.take_result("a")
    assert early is not None
    assert early.result is None
    assert store.complete("a", '{"x": 1}')
    delivered = store.take_result("a")
    assert delivered is not None
    assert delivered.result == '{"x": 1}'
    assert store.take_result("a") is None
    assert store.get("a") is None


def test_read_result_leaves_the_job_until_it_is_deleted(store: SqliteJobStore) -> None:
    store.insert("a", spec())
    early = store.read_result("a")
    assert early is not None
    assert early.result is None
    store.claim_next()
    assert store.complete("a", '{"x": 1}')
    for _ in range(2):  # reading twice (a failed render, a dropped download) loses nothing
        read = store.read_result("a")
        assert read is not None
        assert read.result == '{"x": 1}'
        assert read.record.status is JobStatus.COMPLETED
    assert store.delete("a")
    assert store.read_result("a") is None
    assert store.read_result("missing") is None


def test_cancel_only_while_queued(store: SqliteJobStore) -> None:
    store.insert("a", spec())
    store.insert("b", spec())
    store.claim_next()
    assert not store.cancel("a")
    assert store.cancel("b")
    cancelled = store.get("b")
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    assert store.claim_next() is None


def test_interrupted_lists_the_jobs_left_processing(store: SqliteJobStore) -> None:
    for job_id in ("a", "b", "c"):
        store.insert(job_id, spec())
    store.claim_next()
    store.claim_next()
    store.requeue("b")
    store.claim_next()  # b's second attempt
    assert [(job.id, job.attempts) for job in store.interrupted()] == [("a", 1), ("b", 2)]


def test_requeue_keeps_place_in_line(store: SqliteJobStore) -> None:
    store.insert("a", spec())
    store.insert("b", spec())
    store.claim_next()
    store.requeue("a", "transient")
    assert store.queue_position("a") == 1
    again = store.claim_next()
    assert again is not None
    assert again.id == "a"
    assert again.attempts == 2


def test_expired_skips_processing(store: SqliteJobStore) -> None:
    store.insert("old-done", spec(), now=100.0)
    store.insert("old-running", spec(), now=100.0)
    store.insert("new", spec(), now=10_000.0)
    store.cancel("old-done", now=200.0)
    store.claim_next()  # old-done is cancelled, so this claims old-running
    assert sorted(store.expired(before=5_000.0)) == ["old-done"]
    assert store.delete("old-done")
    assert not store.delete("old-running")


def test_expiry_counts_from_the_last_change_not_from_creation(
    store: SqliteJobStore, tmp_path: Path
) -> None:
    store.insert("finished-just-now", spec(), now=100.0)
    store.insert("finished-long-ago", spec(), now=100.0)
    store.insert("cancelled-lately", spec(), now=100.0)
    store.insert("queued-long-ago", spec(), now=100.0)
    store.claim_next()
    assert store.complete("finished-just-now", "{}")  # finished now, created long ago
    store.claim_next()
    store.fail("finished-long-ago", "boom", None)
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
        db.execute("UPDATE jobs SET finished_at = 200 WHERE id = 'finished-long-ago'")
    assert store.cancel("cancelled-lately", now=9_000.0)
    a_minute_ago = time.time() - 60
    assert sorted(store.expired(before=a_minute_ago)) == [
        "cancelled-lately",
        "finished-long-ago",
        "queued-long-ago",
    ]
    assert sorted(store.expired(before=5_000.0)) == ["finished-long-ago", "queued-long-ago"]


def test_counts(store: SqliteJobStore) -> None:
    for name in ("a", "b", "c"):
        store.insert(name, spec())
    store.claim_next()
    counts = store.counts()
    assert counts[JobStatus.QUEUED] == 2
    assert counts[JobStatus.PROCESSING] == 1
    assert counts[JobStatus.COMPLETED] == 0


def text_so_far(store: SqliteJobStore, job_id: str) -> str | None:
    record = store.get(job_id)
    assert record is not None
    return record.text_so_far


def test_text_so_far_while_processing_then_cleared(store: SqliteJobStore) -> None:
    store.insert("a", spec())
    store.set_progress("a", 0.5, "queued jobs are not written")
    assert text_so_far(store, "a") is None
    store.claim_next()
    store.set_progress("a", 0.5, "the first words")
    assert text_so_far(store, "a") == "the first words"
    store.requeue("a", "restart")
    assert text_so_far(store, "a") is None
    store.claim_next()
    store.set_progress("a", 0.9, "the first words and more")
    store.complete("a", '{"text": "the first words and more"}')
    assert text_so_far(store, "a") is None


def test_a_store_from_before_streaming_gains_the_column_and_keeps_its_jobs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    old = SqliteJobStore(path)
    old.insert("kept", spec(owner="alice"))
    old.close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE jobs DROP COLUMN text_so_far")
    upgraded = SqliteJobStore(path)
    kept = upgraded.get("kept")
    assert kept is not None
    assert kept.spec.owner == "alice"
    assert upgraded.claim_next() is not None
    upgraded.set_progress("kept", 0.5, "so far")
    assert text_so_far(upgraded, "kept") == "so far"
