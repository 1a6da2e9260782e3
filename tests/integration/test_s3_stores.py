"""The S3 blob and job stores against a real moto S3 server over loopback HTTP."""

from __future__ import annotations

import io
import os
import random
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.audio import DATA
from tests.s3_server import s3_endpoint
from whisperx_api.config import S3Settings
from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.errors import Conflict, NotFound, PayloadTooLarge

pytest.importorskip("boto3")

from whisperx_api.distributed.s3 import (
    MIN_PART_SIZE,
    S3BlobStore,
    ensure_bucket,
    list_keys,
    make_s3_client,
)
from whisperx_api.distributed.s3_store import S3JobStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["s3_endpoint"]

MiB = 1 << 20


@pytest.fixture
def new_client(s3_endpoint: str) -> Callable[[], S3Client]:
    """A fresh client per call, as each replica or worker process would have."""
    settings = S3Settings(endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test")
    return lambda: make_s3_client(settings)


@pytest.fixture
def client(new_client: Callable[[], S3Client]) -> S3Client:
    return new_client()


@pytest.fixture
def bucket(client: S3Client) -> str:
    name = f"t-{uuid.uuid4().hex[:16]}"
    ensure_bucket(client, name)
    ensure_bucket(client, name)  # idempotent
    return name


@pytest.fixture
def blobs(client: S3Client, bucket: str) -> S3BlobStore:
    return S3BlobStore(client, bucket, part_size=MIN_PART_SIZE)


@pytest.fixture
def store(client: S3Client, bucket: str) -> S3JobStore:
    return S3JobStore(client, bucket)


def spec(owner: str | None = None) -> JobSpec:
    return JobSpec(options=TranscriptionOptions(model="base", language="en"), owner=owner)


def all_keys(client: S3Client, bucket: str, prefix: str = "") -> list[str]:
    return list(list_keys(client, bucket, prefix))


def open_uploads(client: S3Client, bucket: str) -> list[Any]:
    return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


class ChunkedReader(io.RawIOBase):
    """A source that refuses to be read whole, to prove uploads stream."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert 0 < size <= 2 * MiB, f"read({size}) would load the whole file"
        self.largest_read = max(self.largest_read, size)
        return self._inner.read(size)


@pytest.fixture
def calls(client: S3Client) -> Iterator[list[str]]:
    """Names of the S3 operations `client` performs from here on."""
    seen: list[str] = []

    def record(model: Any, **_: Any) -> None:
        seen.append(model.name)

    client.meta.events.register("before-call.s3", record)
    yield seen
    client.meta.events.unregister("before-call.s3", record)


# -- blob store ------------------------------------------------------------------------------


def test_audio_round_trip(blobs: S3BlobStore, tmp_path: Path) -> None:
    fixture = DATA / "en_recorded.flac"
    with fixture.open("rb") as source:
        key = blobs.save_audio("job-1", source, max_bytes=10 * MiB)
    assert key == "audio/job-1/audio"
    assert blobs.job_exists("job-1")
    target = blobs.download_audio("job-1", tmp_path / "work" / "audio.flac")
    assert target.read_bytes() == fixture.read_bytes()
    assert not (tmp_path / "work" / "audio.flac.part").exists()
    # a worker's scratch copy is private, like everything under the data directory
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


def test_large_upload_streams_in_parts(
    blobs: S3BlobStore, calls: list[str], tmp_path: Path
) -> None:
    data = os.urandom(2 * MIN_PART_SIZE + 123_456)
    source = ChunkedReader(data)
    blobs.save_audio("big", source, max_bytes=len(data))  # exactly at the limit is fine
    assert calls.count("UploadPart") == 3
    assert "CompleteMultipartUpload" in calls
    assert blobs.download_audio("big", tmp_path / "big").read_bytes() == data


def test_empty_upload_round_trip(blobs: S3BlobStore, tmp_path: Path) -> None:
    blobs.save_audio("empty", io.BytesIO(b""), max_bytes=10)
    assert blobs.download_audio("empty", tmp_path / "e").read_bytes() == b""


def test_size_limit_aborts_multipart_upload(
    blobs: S3BlobStore, client: S3Client, bucket: str, calls: list[str]
) -> None:
    source = ChunkedReader(os.urandom(MIN_PART_SIZE + 3 * MiB))
    with pytest.raises(PayloadTooLarge):
        blobs.save_audio("too-big", source, max_bytes=MIN_PART_SIZE + MiB)
    assert "UploadPart" in calls  # a part had gone up before the limit was passed
    assert "AbortMultipartUpload" in calls
    assert "CompleteMultipartUpload" not in calls
    assert open_uploads(client, bucket) == []
    assert all_keys(client, bucket) == []
    assert not blobs.job_exists("too-big")


def test_size_limit_on_small_file_leaves_nothing(
    blobs: S3BlobStore, client: S3Client, bucket: str
) -> None:
    with (DATA / "en_numbers.flac").open("rb") as source, pytest.raises(PayloadTooLarge):
        blobs.save_audio("small", source, max_bytes=1000)
    assert all_keys(client, bucket) == []
    assert open_uploads(client, bucket) == []


def test_delete_job_removes_every_object_and_open_upload(
    blobs: S3BlobStore, client: S3Client, bucket: str
) -> None:
    for job_id in ("gone", "kept"):
        with (DATA / "en_numbers.flac").open("rb") as source:
            blobs.save_audio(job_id, source, max_bytes=10 * MiB)
    client.put_object(Bucket=bucket, Key="audio/gone/extra", Body=b"x")
    client.create_multipart_upload(Bucket=bucket, Key="audio/gone/audio")
    blobs.delete_job("gone")
    blobs.delete_job("never-existed")
    assert not blobs.job_exists("gone")
    assert blobs.job_exists("kept")
    assert all_keys(client, bucket) == ["audio/kept/audio"]
    assert open_uploads(client, bucket) == []


def test_download_of_missing_audio_is_not_found(blobs: S3BlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        blobs.download_audio("nope", tmp_path / "x")
    assert not (tmp_path / "x").exists()


# -- job store -------------------------------------------------------------------------------


def must_get(store: S3JobStore, job_id: str) -> JobRecord:
    record = store.get(job_id)
    assert record is not None, job_id
    return record


def statuses(store: S3JobStore, *ids: str) -> list[JobStatus | None]:
    return [None if (r := store.get(i)) is None else r.status for i in ids]


def test_insert_and_get_round_trip(store: S3JobStore) -> None:
    inserted = store.insert("a", spec(owner="alice"), now=123.5)
    assert store.get("a") == inserted
    assert inserted.status is JobStatus.QUEUED
    assert inserted.created_at == 123.5
    assert store.get("missing") is None
    with pytest.raises(Conflict):
        store.insert("a", spec())


def test_fifo_positions(store: S3JobStore) -> None:
    names = ("a", "b", "c", "d")
    for name in names:
        store.insert(name, spec())
    assert [store.queue_position(n) for n in names] == [1, 2, 3, 4]
    assert store.claim("b", "w1", lease_seconds=60) is not None
    assert store.cancel("a")
    assert [store.queue_position(n) for n in names] == [None, None, 1, 2]
    assert store.requeue("b", "transient")
    assert [store.queue_position(n) for n in names] == [None, 1, 2, 3]  # b keeps its place
    assert store.queue_position("missing") is None


def test_claims_are_exclusive_under_concurrency(
    new_client: Callable[[], S3Client], bucket: str
) -> None:
    jobs = [f"job-{i}" for i in range(6)]
    setup = S3JobStore(new_client(), bucket)
    for job_id in jobs:
        setup.insert(job_id, spec())
    workers = [f"w{i}" for i in range(8)]
    stores = [S3JobStore(new_client(), bucket) for _ in workers]
    wins: dict[str, list[str]] = {job_id: [] for job_id in jobs}
    lock = threading.Lock()
    start = threading.Barrier(len(workers))

    def work(worker: str, own: S3JobStore) -> None:
        order = random.sample(jobs, len(jobs))
        start.wait()
        for job_id in order:
            if (claimed := own.claim(job_id, worker, lease_seconds=60)) is not None:
                assert claimed.attempts == 1
                with lock:
                    wins[job_id].append(worker)

    run_threads([lambda w=w, s=s: work(w, s) for w, s in zip(workers, stores, strict=True)])
    assert all(len(winners) == 1 for winners in wins.values()), wins
    assert statuses(setup, *jobs) == [JobStatus.PROCESSING] * len(jobs)
    counts = setup.counts()
    assert counts[JobStatus.PROCESSING] == len(jobs)
    assert counts[JobStatus.QUEUED] == 0
    for job_id, (winner,) in wins.items():
        loser = next(w for w in workers if w != winner)
        assert not setup.complete(job_id, "{}", worker_id=loser)
        assert setup.complete(job_id, "{}", worker_id=winner)


def test_live_lease_blocks_claim_and_lapsed_lease_is_taken_over(store: S3JobStore) -> None:
    store.insert("a", spec())
    first = store.claim("a", "w1", lease_seconds=30, now=1000.0)
    assert first is not None
    assert first.started_at == 1000.0
    assert store.claim("a", "w2", lease_seconds=30, now=1029.0) is None
    assert store.claim("a", "w1", lease_seconds=30, now=1029.0) is None
    second = store.claim("a", "w2", lease_seconds=30, now=1031.0)
    assert second is not None
    assert second.attempts == 2
    assert not store.renew_lease("a", "w1", 30, now=1032.0)
    assert not store.requeue("a", "w1 lost it", worker_id="w1")
    assert not store.complete("a", '{"by": "w1"}', worker_id="w1")
    assert store.complete("a", '{"by": "w2"}', worker_id="w2")


def test_lease_renewal_keeps_the_job(store: S3JobStore) -> None:
    store.insert("a", spec())
    store.claim("a", "w1", lease_seconds=10, now=100.0)
    assert store.renew_lease("a", "w1", 10, now=105.0)  # now held until 115
    assert store.lapsed(now=112.0) == []
    assert store.claim("a", "w2", lease_seconds=10, now=112.0) is None
    assert [job.id for job in store.lapsed(now=116.0)] == ["a"]
    assert store.claim("a", "w2", lease_seconds=10, now=116.0) is not None
    assert not store.renew_lease("a", "w1", 10, now=117.0)


def test_lapsed_lists_only_processing_jobs_past_their_lease(store: S3JobStore) -> None:
    store.insert("a", spec())
    store.insert("b", spec())
    store.claim("a", "w1", lease_seconds=10, now=100.0)
    assert store.lapsed(now=105.0) == []
    (lapsed,) = store.lapsed(now=111.0)
    assert (lapsed.id, lapsed.status, lapsed.attempts) == ("a", JobStatus.PROCESSING, 1)
    again = store.claim("a", "w2", lease_seconds=10, now=200.0)
    assert again is not None
    assert again.attempts == 2
    assert store.lapsed(now=205.0) == []
    assert store.complete("a", '{"by": "w2"}', worker_id="w2")
    assert store.lapsed(now=999.0) == []
    counts = store.counts()
    assert (counts[JobStatus.COMPLETED], counts[JobStatus.PROCESSING]) == (1, 0)
    assert counts[JobStatus.QUEUED] == 1  # "b" was never claimed


def test_cancel_only_while_queued(store: S3JobStore) -> None:
    store.insert("a", spec())
    store.insert("b", spec())
    store.claim("a", "w1", lease_seconds=60)
    assert not store.cancel("a")
    assert store.cancel("b", now=50.0)
    cancelled = store.get("b")
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.finished_at == 50.0
    assert not store.cancel("b")
    assert store.claim("b", "w1", lease_seconds=60) is None
    assert not store.cancel("missing")


def test_progress_fail_and_requeue(store: S3JobStore) -> None:
    store.insert("a", spec())
    store.set_progress("a", 0.5)  # queued: ignored
    assert must_get(store, "a").progress is None
    store.claim("a", "w1", lease_seconds=60)
    store.set_progress("a", 0.25, "hello there", worker_id="w1")
    store.set_progress("a", 0.75, "someone else's", worker_id="someone-else")
    running = must_get(store, "a")
    assert (running.progress, running.text_so_far) == (0.25, "hello there")
    assert store.requeue("a", "shutting down", uncount=True)
    requeued = must_get(store, "a")
    assert (requeued.attempts, requeued.text_so_far) == (0, None)
    store.claim("a", "w1", lease_seconds=60)
    assert store.fail("a", "bad audio", "invalid_audio")
    failed = store.get("a")
    assert failed is not None
    assert (failed.status, failed.error, failed.error_code) == (
        JobStatus.FAILED,
        "bad audio",
        "invalid_audio",
    )
    assert not store.fail("a", "again", None)
    assert not store.requeue("a")


def test_result_written_twice_is_harmless(store: S3JobStore, client: S3Client, bucket: str) -> None:
    store.insert("a", spec())
    store.claim("a", "w1", lease_seconds=60)
    store.set_progress("a", 0.5, "first so far", worker_id="w1")
    assert store.complete("a", '{"text": "first"}')
    done = store.get("a")
    assert done is not None
    assert done.text_so_far is None
    assert done is not None
    assert (done.status, done.progress) == (JobStatus.COMPLETED, 1.0)
    assert not store.complete("a", '{"text": "second"}')
    assert store.get("a") == done
    body = client.get_object(Bucket=bucket, Key="jobs/a/result.json")["Body"].read()
    assert body == b'{"text": "first"}'


def test_read_result_leaves_the_job_until_it_is_deleted(
    store: S3JobStore, client: S3Client, bucket: str
) -> None:
    store.insert("a", spec())
    early = store.read_result("a")
    assert early is not None
    assert early.result is None
    store.claim("a", "w1", lease_seconds=60)
    assert store.complete("a", '{"x": 1}', worker_id="w1")
    for _ in range(2):  # reading twice (a failed render, a dropped download) loses nothing
        read = store.read_result("a")
        assert read is not None
        assert read.result == '{"x": 1}'
        assert read.record.status is JobStatus.COMPLETED
    assert store.delete("a")
    assert store.read_result("a") is None
    assert store.read_result("missing") is None
    assert all_keys(client, bucket) == []


def test_take_result_before_completion_changes_nothing(store: S3JobStore) -> None:
    store.insert("a", spec())
    early = store.take_result("a")
    assert early is not None
    assert early.result is None
    assert early.record.status is JobStatus.QUEUED
    assert store.queue_position("a") == 1
    assert store.take_result("missing") is None


def test_take_result_once_across_replicas(new_client: Callable[[], S3Client], bucket: str) -> None:
    replicas = [S3JobStore(new_client(), bucket) for _ in range(2)]
    jobs = [f"job-{i}" for i in range(5)]
    for job_id in jobs:
        replicas[0].insert(job_id, spec())
        replicas[1].claim(job_id, "w1", lease_seconds=60)
        replicas[1].complete(job_id, f'{{"job": "{job_id}"}}')
    deliveries: dict[str, list[str | None]] = {job_id: [] for job_id in jobs}
    lock = threading.Lock()
    start = threading.Barrier(len(replicas))

    def take_all(replica: S3JobStore) -> None:
        start.wait()
        for job_id in jobs:
            got = replica.take_result(job_id)
            with lock:
                deliveries[job_id].append(None if got is None else got.result)

    run_threads([lambda r=r: take_all(r) for r in replicas])
    for job_id, got in deliveries.items():
        assert sorted(got, key=str) == sorted([f'{{"job": "{job_id}"}}', None], key=str), got
        assert replicas[0].get(job_id) is None
        assert replicas[1].take_result(job_id) is None
    assert all_keys(new_client(), bucket) == []  # records, results and markers all gone


def test_counts(store: S3JobStore) -> None:
    for name in ("a", "b", "c", "d", "e"):
        store.insert(name, spec())
    store.claim("a", "w1", lease_seconds=60)
    store.claim("b", "w1", lease_seconds=60)
    store.complete("b", "{}")
    store.cancel("c")
    counts = store.counts()
    assert counts == {
        JobStatus.QUEUED: 2,
        JobStatus.PROCESSING: 1,
        JobStatus.COMPLETED: 1,
        JobStatus.FAILED: 0,
        JobStatus.CANCELLED: 1,
    }


def test_expired_skips_processing_and_delete(
    store: S3JobStore, client: S3Client, bucket: str
) -> None:
    store.insert("old-done", spec(), now=100.0)
    store.insert("old-running", spec(), now=100.0)
    store.insert("new", spec(), now=10_000.0)
    store.cancel("old-done", now=200.0)
    store.claim("old-running", "w1", lease_seconds=60)
    assert store.expired(before=5_000.0) == ["old-done"]
    assert store.expired(before=50.0) == []
    assert store.delete("old-done")
    assert not store.delete("old-done")
    assert not store.delete("old-running")
    assert store.get("old-done") is None
    assert not [k for k in all_keys(client, bucket) if "old-done" in k]


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Run every target in its own thread; re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]


def test_unannounced_jobs_are_the_old_queued_ones_never_published(store: S3JobStore) -> None:
    for name in ("orphan", "announced", "claimed", "young"):
        store.insert(name, spec())
    assert store.mark_announced("announced")
    assert store.mark_announced("announced")  # again: harmless
    store.claim("claimed", "w1", lease_seconds=60)  # a worker got its message
    assert store.requeue("claimed", "retry", worker_id="w1")
    later = time.time() + 61
    assert store.unannounced(60, now=later) == ["orphan", "young"]
    assert store.unannounced(60) == []  # nothing is a minute old yet
    assert not store.mark_announced("missing")
    assert store.delete("orphan")
    assert not store.mark_announced("orphan")  # gone: its replica's 202 must not go out
    assert store.unannounced(60, now=later) == ["young"]


def test_expiry_counts_from_the_last_change_not_from_creation(store: S3JobStore) -> None:
    for name in ("finished-just-now", "finished-long-ago", "cancelled-lately", "queued-long-ago"):
        store.insert(name, spec(), now=100.0)
    store.claim("finished-just-now", "w1", lease_seconds=60)
    assert store.complete("finished-just-now", "{}", worker_id="w1")  # finished now
    store.claim("finished-long-ago", "w1", lease_seconds=60)
    assert store.fail("finished-long-ago", "boom", None, worker_id="w1", now=200.0)
    assert store.cancel("cancelled-lately", now=9_000.0)
    a_minute_ago = time.time() - 60
    assert sorted(store.expired(before=a_minute_ago)) == [
        "cancelled-lately",
        "finished-long-ago",
        "queued-long-ago",
    ]
    assert sorted(store.expired(before=5_000.0)) == ["finished-long-ago", "queued-long-ago"]
