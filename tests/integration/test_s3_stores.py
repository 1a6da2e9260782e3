"""The S3 blob store, and what only the S3 job store has, against a real moto S3 server over
loopback HTTP. The job store's shared behaviour is the contract suite's (tests/contract)."""

from __future__ import annotations

import io
import os
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
from whisperx_api.distributed.s3 import (
    MIN_PART_SIZE,
    S3BlobStore,
    ensure_bucket,
    list_keys,
    make_s3_client,
)
from whisperx_api.distributed.s3_store import S3JobStore
from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.errors import NotFound, PayloadTooLarge, UnreadableJob

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


def test_result_written_twice_keeps_the_first_object(
    store: S3JobStore, client: S3Client, bucket: str
) -> None:
    store.insert("a", spec())
    store.claim("w1", 60.0, "a")
    assert store.complete("a", "w1", '{"text": "first"}')
    assert not store.complete("a", "w1", '{"text": "second"}')
    body = client.get_object(Bucket=bucket, Key="jobs/a/result.json")["Body"].read()
    assert body == b'{"text": "first"}'


def test_delete_once_across_replicas_leaves_no_object(
    new_client: Callable[[], S3Client], bucket: str
) -> None:
    replicas = [S3JobStore(new_client(), bucket) for _ in range(2)]
    jobs = [f"job-{i}" for i in range(5)]
    for job_id in jobs:
        replicas[0].insert(job_id, spec())
        replicas[1].claim("w1", 60.0, job_id)
        replicas[1].complete(job_id, "w1", f'{{"job": "{job_id}"}}')
    deleted: dict[str, list[bool]] = {job_id: [] for job_id in jobs}
    lock = threading.Lock()
    start = threading.Barrier(len(replicas))

    def delete_all(replica: S3JobStore) -> None:
        start.wait()
        for job_id in jobs:
            done = replica.delete(job_id)
            with lock:
                deleted[job_id].append(done)

    run_threads([lambda r=r: delete_all(r) for r in replicas])
    for job_id, outcomes in deleted.items():
        assert sorted(outcomes) == [False, True], outcomes
        assert replicas[0].get(job_id) is None
    assert all_keys(new_client(), bucket) == []  # records, results and markers all gone


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
    store.claim("w1", 60.0, "claimed")  # a worker got its message
    assert store.requeue("claimed", "w1", "retry")
    later = time.time() + 61
    assert store.unannounced(60, now=later) == ["orphan", "young"]
    assert store.unannounced(60) == []  # nothing is a minute old yet
    assert not store.mark_announced("missing")
    assert store.delete("orphan")
    assert not store.mark_announced("orphan")  # gone: its replica's 202 must not go out
    assert store.unannounced(60, now=later) == ["young"]


def test_a_record_it_cannot_read_raises_unreadable_job_and_scans_pass_over_it(
    store: S3JobStore, client: S3Client, bucket: str
) -> None:
    store.insert("readable", spec(), now=100.0)
    store.insert("newer", spec(), now=100.0)
    client.put_object(Bucket=bucket, Key="jobs/newer/record.json", Body=b'{"v": 2}')
    with pytest.raises(UnreadableJob) as raised:
        store.get("newer")
    assert raised.value.message == (
        "The stored record of job 'newer' cannot be read by this server "
        "(ValueError('unsupported job record version 2'))."
    )
    assert raised.value.code == "unreadable_job"
    assert store.expired(before=200.0) == ["readable"]
    assert store.unannounced(0, now=time.time() + 60) == ["readable"]
    assert store.lapsed() == []
