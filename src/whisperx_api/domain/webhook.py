"""A job's webhook: the event it announces and where its delivery stands.

When a job with a `webhook_url` ends, its store attaches a `WebhookState` in the same write that
makes the job terminal, so the event is never lost between the two. The body is fixed then (its
timestamp is the job's end), so every retry sends the same bytes under the same message id.
The body names the job and where to fetch it; the transcript itself stays behind auth.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from whisperx_api.domain.job import JobRecord, JobStatus

# Multiples of the base delay (5 s by default): 5 s, 30 s, 2 min, 10 min, 30 min, then hourly.
BACKOFF_STEPS = (1, 6, 24, 120, 360, 720)

_EVENT_TYPES = {
    JobStatus.COMPLETED: "transcription.completed",
    JobStatus.FAILED: "transcription.failed",
    JobStatus.CANCELLED: "transcription.cancelled",
}


@dataclass(frozen=True, slots=True)
class WebhookState:
    """One job's webhook delivery, stored with the job (and outliving it while pending)."""

    url: str
    message_id: str
    body: str
    attempts: int = 0
    last_status: int | None = None  # HTTP status of the last attempt; None: no answer
    delivered: bool = False
    gave_up: bool = False
    next_at: float | None = None  # when the next attempt is due; None once settled
    claim: str | None = None  # token of the party that owns the attempt in flight

    @property
    def pending(self) -> bool:
        """Still to be delivered (not delivered, not given up)."""
        return not (self.delivered or self.gave_up)

    def due(self, now: float) -> bool:
        """Pending, and its next attempt (or a lapsed claim) is due."""
        return self.pending and self.next_at is not None and self.next_at <= now

    def claimed(self, token: str, until: float) -> WebhookState:
        """Taken by `token` for one attempt; due again at `until` if its owner vanishes."""
        return replace(self, claim=token, next_at=until)

    def after_attempt(
        self, status: int | None, now: float, max_attempts: int, base_seconds: float
    ) -> WebhookState:
        """The state once an attempt answered `status` (None: timeout or connection error)."""
        attempts = self.attempts + 1
        delivered = status is not None and 200 <= status < 300
        gave_up = not delivered and attempts >= max_attempts
        settled = delivered or gave_up
        return replace(
            self,
            attempts=attempts,
            last_status=status,
            delivered=delivered,
            gave_up=gave_up,
            next_at=None if settled else now + backoff_seconds(attempts, base_seconds),
            claim=None,
        )

    def public(self) -> dict[str, Any]:
        """What `GET /transcription/{id}` shows."""
        return {
            "attempts": self.attempts,
            "last_status": self.last_status,
            "delivered": self.delivered,
        }

    def to_json(self) -> dict[str, Any]:
        """For the stores."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookState:
        """Inverse of `to_json`."""
        return cls(**data)


def backoff_seconds(attempts_made: int, base_seconds: float) -> float:
    """The wait before attempt `attempts_made + 1`."""
    step = BACKOFF_STEPS[min(attempts_made, len(BACKOFF_STEPS)) - 1]
    return step * base_seconds


def message_id(job_id: str) -> str:
    """The Standard Webhooks message id: one per job, the same on every retry."""
    return f"msg_{job_id.replace('-', '')}"


def ended(record: JobRecord, now: float) -> WebhookState | None:
    """The webhook a job that just ended owes its client, if it asked for one."""
    url = record.spec.webhook_url
    if url is None or not record.status.is_terminal:
        return None
    return WebhookState(
        url=url, message_id=message_id(record.id), body=event_body(record), next_at=now
    )


def event_body(record: JobRecord) -> str:
    """The JSON event: type, when the job ended, and where to look (no transcript)."""
    status_url = f"/transcription/{record.id}"
    data: dict[str, Any] = {
        "job_id": record.id,
        "status": record.status.value,
        "status_url": status_url,
    }
    if record.status is JobStatus.COMPLETED:
        data["result_url"] = f"{status_url}/result"
    if record.status is JobStatus.FAILED:
        data["error"] = record.error
    at = record.finished_at if record.finished_at is not None else record.created_at
    event = {
        "type": _EVENT_TYPES[record.status],
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)
