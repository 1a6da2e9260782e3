"""What every job store's webhook outbox must do, written once for the SQLite and the S3 store.

Each case gets a `Harness`: the store, its outbox and how to move a job to Processing there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from whisperx_api.domain.job import JobRecord, JobSpec
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.jobs.webhooks import WebhookOutbox

URL = "https://hooks.example.com/whisper"
BASE = 5.0  # seconds: the first retry delay
LEASE = 40.0


class Store(Protocol):
    def insert(self, job_id: str, spec: JobSpec, now: float | None = None) -> JobRecord: ...
    def get(self, job_id: str) -> JobRecord | None: ...
    def complete(self, job_id: str, result: str) -> bool: ...
    def fail(self, job_id: str, error: str, code: str | None) -> bool: ...
    def cancel(self, job_id: str, now: float | None = None) -> bool: ...
    def take_result(self, job_id: str) -> Any: ...
    def expired(self, before: float) -> list[str]: ...
    def delete(self, job_id: str) -> bool: ...


@dataclass
class Harness:
    store: Store
    outbox: WebhookOutbox
    start: Callable[[str], None]  # queued -> processing


def spec(webhook: str | None = URL) -> JobSpec:
    return JobSpec(options=TranscriptionOptions(model="base"), webhook_url=webhook)


def finished_job(h: Harness, job_id: str, webhook: str | None = URL) -> None:
    h.store.insert(job_id, spec(webhook))
    h.start(job_id)
    assert h.store.complete(job_id, '{"v": 1}')


def ids(claimed: list[tuple[str, Any]]) -> list[str]:
    return [job_id for job_id, _ in claimed]


def case_completed_job_is_claimed_once_retried_then_delivered(h: Harness) -> None:
    finished_job(h, "job-1")
    now = time.time()
    [(job_id, state)] = h.outbox.claim_due_webhooks("a", LEASE, now)
    assert job_id == "job-1"
    assert state.url == URL
    assert state.claim == "a"
    event = json.loads(state.body)
    assert event["type"] == "transcription.completed"
    assert event["data"]["result_url"] == "/transcription/job-1/result"
    assert h.outbox.claim_due_webhooks("b", LEASE, now) == []  # a owns this attempt
    failed = state.after_attempt(500, now, 8, BASE)
    assert not h.outbox.settle_webhook("job-1", "b", failed)  # not b's to record
    assert h.outbox.settle_webhook("job-1", "a", failed)
    record = h.store.get("job-1")
    assert record is not None
    assert record.webhook is not None
    assert record.webhook.public() == {"attempts": 1, "last_status": 500, "delivered": False}
    assert h.outbox.claim_due_webhooks("b", LEASE, now + BASE - 0.5) == []  # backing off
    [(_, retry)] = h.outbox.claim_due_webhooks("b", LEASE, now + BASE + 0.5)
    assert retry.message_id == state.message_id
    assert retry.body == state.body
    assert h.outbox.settle_webhook("job-1", "b", retry.after_attempt(204, now + BASE, 8, BASE))
    assert h.outbox.claim_due_webhooks("c", LEASE, now + 10_000) == []
    record = h.store.get("job-1")
    assert record is not None
    assert record.webhook is not None
    assert record.webhook.public() == {"attempts": 2, "last_status": 204, "delivered": True}


def case_a_claim_whose_owner_vanished_lapses(h: Harness) -> None:
    finished_job(h, "job-2")
    now = time.time()
    [(_, lost)] = h.outbox.claim_due_webhooks("dead", LEASE, now)
    assert h.outbox.claim_due_webhooks("live", LEASE, now + LEASE - 1) == []
    [(_, state)] = h.outbox.claim_due_webhooks("live", LEASE, now + LEASE + 1)
    assert state.attempts == 0
    assert not h.outbox.settle_webhook("job-2", "dead", lost.after_attempt(200, now, 8, BASE))
    assert h.outbox.settle_webhook("job-2", "live", state.after_attempt(200, now, 8, BASE))


def case_giving_up_after_max_attempts(h: Harness) -> None:
    finished_job(h, "job-3")
    now = time.time()
    for attempt in range(3):
        [(_, state)] = h.outbox.claim_due_webhooks("a", LEASE, now + 100_000 * attempt)
        after = state.after_attempt(None, now + 100_000 * attempt, 3, BASE)
        assert h.outbox.settle_webhook("job-3", "a", after)
    assert after.gave_up
    assert not after.delivered
    assert h.outbox.claim_due_webhooks("a", LEASE, now + 10**7) == []


def case_failed_and_cancelled_jobs_and_jobs_without_a_url(h: Harness) -> None:
    h.store.insert("failed", spec())
    h.start("failed")
    assert h.store.fail("failed", "the model crashed", "backend_error")
    h.store.insert("cancelled", spec())
    assert h.store.cancel("cancelled")
    finished_job(h, "silent", webhook=None)
    claimed = dict(h.outbox.claim_due_webhooks("a", LEASE, time.time()))
    assert sorted(claimed) == ["cancelled", "failed"]
    failed = json.loads(claimed["failed"].body)
    assert failed["type"] == "transcription.failed"
    assert failed["data"] == {
        "job_id": "failed",
        "status": "Failed",
        "status_url": "/transcription/failed",
        "error": "the model crashed",
    }
    cancelled = json.loads(claimed["cancelled"].body)
    assert cancelled["type"] == "transcription.cancelled"
    assert "result_url" not in cancelled["data"]
    silent = h.store.get("silent")
    assert silent is not None
    assert silent.webhook is None


def case_a_fetched_result_keeps_its_pending_webhook(h: Harness) -> None:
    finished_job(h, "job-4")
    delivery = h.store.take_result("job-4")
    assert delivery is not None
    assert delivery.result is not None
    assert h.store.get("job-4") is None  # gone for the API
    now = time.time()
    [(_, state)] = h.outbox.claim_due_webhooks("a", LEASE, now)
    assert json.loads(state.body)["data"]["job_id"] == "job-4"
    assert h.outbox.settle_webhook("job-4", "a", state.after_attempt(200, now, 8, BASE))
    assert h.outbox.claim_due_webhooks("a", LEASE, now + 10**7) == []


def case_retention_waits_for_a_pending_webhook(h: Harness) -> None:
    finished_job(h, "job-5")
    later = time.time() + 10**6
    assert "job-5" not in h.store.expired(later)
    [(_, state)] = h.outbox.claim_due_webhooks("a", LEASE, time.time())
    assert h.outbox.settle_webhook("job-5", "a", state.after_attempt(200, time.time(), 8, BASE))
    assert "job-5" in h.store.expired(later)
    assert h.store.delete("job-5")
    assert h.store.get("job-5") is None


CASES = [
    case_completed_job_is_claimed_once_retried_then_delivered,
    case_a_claim_whose_owner_vanished_lapses,
    case_giving_up_after_max_attempts,
    case_failed_and_cancelled_jobs_and_jobs_without_a_url,
    case_a_fetched_result_keeps_its_pending_webhook,
    case_retention_waits_for_a_pending_webhook,
]
