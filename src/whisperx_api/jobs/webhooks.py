"""Webhook delivery: sign each event per Standard Webhooks and POST it until it is accepted.

The stores keep the outbox (a job's `WebhookState`, written with its terminal status). This loop
claims due attempts from it for a lease, sends them, and records each outcome under its claim:

- at-least-once: a 2xx settles it; a timeout, connection error or any other status schedules
  the next attempt with exponential backoff, up to `max_attempts`;
- durable: the state lives in the job store, so a restart (or, in Kafka mode, another replica)
  picks up where the last attempt left off; a claim whose owner died lapses after its lease;
- the same `webhook-id` and body on every attempt; only the timestamp and signature change.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx
from standardwebhooks import Webhook

from whisperx_api import metrics, net_guard
from whisperx_api.config import Settings
from whisperx_api.domain.webhook import WebhookState
from whisperx_api.errors import InvalidRequest, WebhooksDisabled
from whisperx_api.executors import run_io
from whisperx_api.jobs.ports import ended_task

log = logging.getLogger(__name__)

_LOGGED_OUTCOMES = {"delivered": "delivered", "retried": "will retry", "failed": "gave up"}

PARAM = "webhook_url"
_BATCH = 16
_LEASE_MARGIN_SECONDS = 30.0
_USER_AGENT = "whisperx-api-webhooks"


class WebhookOutbox(Protocol):
    """Where pending deliveries live (the `JobStore`): claims for one attempt, outcomes under
    the claim."""

    def claim_due_webhooks(
        self, token: str, lease_seconds: float, now: float | None = None, limit: int = _BATCH
    ) -> list[tuple[str, WebhookState]]: ...

    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool: ...


async def admit_webhook_url(url: str, settings: Settings) -> str:
    """Submit-time checks: an http(s) URL to a public host, and a secret to sign with (without
    one the server refuses webhooks rather than send them unsigned)."""
    net_guard.check_url_syntax(url, PARAM)
    if settings.webhooks.secret is None:
        raise WebhooksDisabled(
            "webhook_url needs the server's WEBHOOKS__SECRET to sign deliveries; it is not set.",
            param=PARAM,
        )
    await net_guard.check_url(url, settings.fetch.allow_private_networks, param=PARAM)
    return url


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How often and how long to try."""

    max_attempts: int
    backoff_seconds: float
    timeout_seconds: float
    allow_private: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        hooks = settings.webhooks
        return cls(
            hooks.max_attempts,
            hooks.backoff_seconds,
            hooks.timeout_seconds,
            settings.fetch.allow_private_networks,
        )

    @property
    def lease_seconds(self) -> float:
        """Long enough for one attempt to time out and be recorded."""
        return self.timeout_seconds + _LEASE_MARGIN_SECONDS

    @property
    def poll_seconds(self) -> float:
        return min(1.0, self.backoff_seconds)


def signed_headers(signer: Webhook, state: WebhookState, at: datetime) -> dict[str, str]:
    """Standard Webhooks headers for one attempt at `at`."""
    return {
        "content-type": "application/json",
        "user-agent": _USER_AGENT,
        "webhook-id": state.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer.sign(state.message_id, at, state.body),
    }


class WebhookDeliverer:
    """The delivery loop: a `Background` of the API runtime (both modes)."""

    def __init__(self, outbox: WebhookOutbox, secret: str, policy: DeliveryPolicy) -> None:
        self._outbox = outbox
        self._signer = Webhook(secret)
        self._policy = policy
        self._token = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = False

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self._policy.timeout_seconds, follow_redirects=False, trust_env=False
        )
        self._task = asyncio.create_task(self._loop(), name="webhook-delivery")

    def problems(self) -> list[str]:
        """The delivery loop, if it ended while it should be running (for `/health`)."""
        task = self._task
        return [ended_task(task)] if task is not None and task.done() and not self._stopping else []

    async def stop(self, grace_seconds: float) -> None:
        """Stop at once: an attempt cut short is claimed again after its lease."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # one that died was reported by `problems`
        if self._client is not None:
            await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                claimed = await run_io(
                    self._outbox.claim_due_webhooks, self._token, self._policy.lease_seconds
                )
                await self._attempt_all(claimed)
            except Exception:
                log.exception("webhook delivery round failed; retrying")
            metrics.WEBHOOK_ROUNDS.inc()
            await asyncio.sleep(self._policy.poll_seconds)

    async def _attempt_all(self, claimed: Sequence[tuple[str, WebhookState]]) -> None:
        """Send the round's attempts at once; one that fails to be recorded is claimed again
        when its lease ends."""
        outcomes = await asyncio.gather(
            *(self._attempt(job_id, state) for job_id, state in claimed), return_exceptions=True
        )
        for (job_id, _), outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error("job %s: webhook attempt not recorded", job_id, exc_info=outcome)

    async def _attempt(self, job_id: str, state: WebhookState) -> None:
        status = await self._send(job_id, state)
        policy = self._policy
        after = state.after_attempt(
            status, time.time(), policy.max_attempts, policy.backoff_seconds
        )
        recorded = await run_io(self._outbox.settle_webhook, job_id, self._token, after)
        counted = "delivered" if after.delivered else "failed" if after.gave_up else "retried"
        metrics.WEBHOOK_DELIVERIES.labels(outcome=counted).inc()
        outcome = _LOGGED_OUTCOMES[counted]
        log.info(
            "job %s: webhook attempt %d answered %s; %s%s",
            job_id,
            after.attempts,
            status if status is not None else "nothing",
            outcome,
            "" if recorded else " (claim lapsed; not recorded)",
        )

    async def _send(self, job_id: str, state: WebhookState) -> int | None:
        """One POST; its status, or None for no answer (timeout, refused, unreachable)."""
        assert self._client is not None
        try:
            checked = await net_guard.check_url(state.url, self._policy.allow_private, param=PARAM)
        except InvalidRequest as exc:
            log.warning("job %s: webhook target refused: %s", job_id, exc.message)
            return None
        target = net_guard.pin(checked)  # the address just checked, not a fresh lookup
        headers = {**signed_headers(self._signer, state, datetime.now(UTC)), **target.headers}
        try:
            response = await self._client.post(
                target.url, content=state.body, headers=headers, extensions=target.extensions
            )
        except httpx.HTTPError as exc:
            log.info("job %s: webhook POST failed: %s", job_id, type(exc).__name__)
            return None
        return response.status_code
