"""The S3 job store's webhook outbox against a real moto S3 server: the same cases as the
SQLite store's, plus what only the shared store has (markers, kept tombstones, racing claims)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.s3_server import s3_endpoint
from tests.webhook_outbox_cases import CASES, LEASE, Harness, finished_job, ids, spec
from whisperx_api.config import S3Settings

pytest.importorskip("boto3")

from whisperx_api.distributed.s3 import ensure_bucket, list_keys, make_s3_client
from whisperx_api.distributed.s3_store import S3JobStore
from whisperx_api.jobs.webhooks import SharedOutbox

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["s3_endpoint"]


@pytest.fixture
def new_client(s3_endpoint: str) -> Callable[[], S3Client]:
    settings = S3Settings(endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test")
    return lambda: make_s3_client(settings)


@pytest.fixture
def bucket(new_client: Callable[[], S3Client]) -> str:
    name = f"w-{uuid.uuid4().hex[:16]}"
    ensure_bucket(new_client(), name)
    return name


def harness(client: S3Client, bucket: str) -> Harness:
    store = S3JobStore(client, bucket)

    def start(job_id: str) -> None:
        assert store.claim(job_id, "worker", 60) is not None

    return Harness(store, SharedOutbox(store), start)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.removeprefix("case_"))
def test_s3_outbox(case: object, new_client: Callable[[], S3Client], bucket: str) -> None:
    case(harness(new_client(), bucket))  # type: ignore[operator]


def test_settled_webhooks_leave_no_marker_and_no_kept_tombstone(
    new_client: Callable[[], S3Client], bucket: str
) -> None:
    client = new_client()
    h = harness(client, bucket)
    finished_job(h, "kept")
    assert list(list_keys(client, bucket, "webhooks/")) == ["webhooks/kept"]
    assert h.store.take_result("kept") is not None
    assert list(list_keys(client, bucket, "jobs/")) == ["jobs/kept/record.json"]  # the tombstone
    [(_, state)] = h.outbox.claim_due_webhooks("a", LEASE, time.time())
    assert h.outbox.settle_webhook("kept", "a", state.after_attempt(200, time.time(), 8, 5.0))
    assert list(list_keys(client, bucket, "webhooks/")) == []
    assert list(list_keys(client, bucket, "jobs/")) == []


def test_a_round_between_the_marker_and_the_ending_record_keeps_the_marker(
    new_client: Callable[[], S3Client], bucket: str
) -> None:
    """The marker goes in just before the record that ends the job: a delivery round that reads
    in between sees a job still processing, and must not take the marker away."""
    client = new_client()
    h = harness(client, bucket)
    h.store.insert("racing", spec())
    h.start("racing")
    client.put_object(Bucket=bucket, Key="webhooks/racing", Body=b"")  # the ending's first step
    assert h.outbox.claim_due_webhooks("a", LEASE, time.time()) == []
    assert list(list_keys(client, bucket, "webhooks/")) == ["webhooks/racing"]
    assert h.store.complete("racing", '{"v": 1}')  # the ending's second step
    assert ids(h.outbox.claim_due_webhooks("a", LEASE, time.time())) == ["racing"]


def test_racing_replicas_claim_each_attempt_exactly_once(
    new_client: Callable[[], S3Client], bucket: str
) -> None:
    """Eight replicas, each with its own client, claim the same due webhooks at once."""
    setup = harness(new_client(), bucket)
    jobs = [f"race-{i}" for i in range(6)]
    for job_id in jobs:
        finished_job(setup, job_id)
    outboxes = [harness(new_client(), bucket).outbox for _ in range(8)]
    won: dict[str, list[str]] = {}
    barrier = threading.Barrier(len(outboxes))
    lock = threading.Lock()
    now = time.time()

    def replica(index: int) -> None:
        barrier.wait()
        for job_id, _ in outboxes[index].claim_due_webhooks(f"r{index}", LEASE, now):
            with lock:
                won.setdefault(job_id, []).append(f"r{index}")

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(len(outboxes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(won) == jobs
    assert all(len(owners) == 1 for owners in won.values()), won
