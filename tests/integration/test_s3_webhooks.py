"""What only the S3 job store's webhook outbox has: markers and the tombstones kept for pending
deliveries. Its behaviour as an outbox is the contract suite's (tests/contract)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.s3_server import s3_endpoint
from whisperx_api.config import S3Settings
from whisperx_api.distributed.s3 import ensure_bucket, list_keys, make_s3_client
from whisperx_api.distributed.s3_store import S3JobStore
from whisperx_api.domain.job import JobSpec
from whisperx_api.domain.options import TranscriptionOptions

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["s3_endpoint"]

URL = "https://hooks.example.com/whisper"
LEASE = 40.0


@pytest.fixture
def new_client(s3_endpoint: str) -> Callable[[], S3Client]:
    settings = S3Settings(endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test")
    return lambda: make_s3_client(settings)


@pytest.fixture
def bucket(new_client: Callable[[], S3Client]) -> str:
    name = f"w-{uuid.uuid4().hex[:16]}"
    ensure_bucket(new_client(), name)
    return name


def spec() -> JobSpec:
    return JobSpec(options=TranscriptionOptions(model="base"), webhook_url=URL)


def started(store: S3JobStore, job_id: str) -> None:
    store.insert(job_id, spec())
    assert store.claim("worker", 60.0, job_id) is not None


def test_settled_webhooks_leave_no_marker_and_no_kept_tombstone(
    new_client: Callable[[], S3Client], bucket: str
) -> None:
    client = new_client()
    store = S3JobStore(client, bucket)
    started(store, "kept")
    assert store.complete("kept", "worker", '{"v": 1}')
    assert list(list_keys(client, bucket, "webhooks/")) == ["webhooks/kept"]
    assert store.delete("kept")
    assert list(list_keys(client, bucket, "jobs/")) == ["jobs/kept/record.json"]  # the tombstone
    [(_, state)] = store.claim_due_webhooks("a", LEASE, time.time())
    assert store.settle_webhook("kept", "a", state.after_attempt(200, time.time(), 8, 5.0))
    assert list(list_keys(client, bucket, "webhooks/")) == []
    assert list(list_keys(client, bucket, "jobs/")) == []


def test_a_round_between_the_marker_and_the_ending_record_keeps_the_marker(
    new_client: Callable[[], S3Client], bucket: str
) -> None:
    """The marker goes in just before the record that ends the job: a delivery round that reads
    in between sees a job still processing, and must not take the marker away."""
    client = new_client()
    store = S3JobStore(client, bucket)
    started(store, "racing")
    client.put_object(Bucket=bucket, Key="webhooks/racing", Body=b"")  # the ending's first step
    assert store.claim_due_webhooks("a", LEASE, time.time()) == []
    assert list(list_keys(client, bucket, "webhooks/")) == ["webhooks/racing"]
    assert store.complete("racing", "worker", '{"v": 1}')  # the ending's second step
    assert [job_id for job_id, _ in store.claim_due_webhooks("a", LEASE, time.time())] == ["racing"]
