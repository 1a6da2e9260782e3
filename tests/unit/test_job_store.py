"""What only the SQLite job store has: upgrades of stores written by earlier versions. Its
behaviour as a job store is the contract suite's (tests/contract), shared with the S3 store."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from whisperx_api.domain.job import JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.jobs.store import SqliteJobStore


def spec(owner: str | None = None) -> JobSpec:
    return JobSpec(options=TranscriptionOptions(model="base"), owner=owner)


def text_so_far(store: SqliteJobStore, job_id: str) -> str | None:
    record = store.get(job_id)
    assert record is not None
    return record.text_so_far


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
    assert upgraded.claim("w1", math.inf) is not None
    upgraded.set_progress("kept", "w1", 0.5, "so far")
    assert text_so_far(upgraded, "kept") == "so far"


def test_a_job_left_processing_by_a_store_from_before_leases_is_lapsed_and_settled(
    tmp_path: Path,
) -> None:
    """Rows claimed before workers were named have no worker and no lease: lapsed at once,
    and settled in the name of no worker."""
    path = tmp_path / "old.sqlite3"
    old = SqliteJobStore(path)
    old.insert("running", spec())
    old.close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE jobs DROP COLUMN worker")
        db.execute("ALTER TABLE jobs DROP COLUMN lease_until")
        db.execute("UPDATE jobs SET status = 'Processing', attempts = 1")
    upgraded = SqliteJobStore(path)
    (lapsed,) = upgraded.lapsed(now=0.0)
    assert (lapsed.id, lapsed.worker, lapsed.lease_until) == ("running", None, None)
    assert not upgraded.requeue("running", "someone", "lost")
    assert upgraded.requeue("running", None, "lost")
    again = upgraded.get("running")
    assert again is not None
    assert (again.status, again.attempts, again.error) == (JobStatus.QUEUED, 1, "lost")
