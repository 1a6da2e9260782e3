"""Webhook delivery: sign each event per Standard Webhooks and POST it until it is accepted.

The stores keep the outbox (a job's `WebhookState`, written with its terminal status). This loop
claims due attempts from it for a lease, sends them, and records each outcome under its claim:

- at-least-once: a 2xx settles it; a timeout, connection error or any other status schedules
  the next attempt with exponential backoff, up to `max_attempts`;
- durable: the state lives in the job store, so a restart (or, in Kafka mode, another replica)
  picks up where the last attempt left off; a claim whose owner died lapses after its lease;
- the same `webhook-id` and body on every attempt; only the timestamp and signature change;
- receivers cannot hold the loop: each attempt runs as its own task under one total deadline
  (`WEBHOOKS__TIMEOUT_SECONDS`, however slowly the receiver drips its answer), reads at most a
  small raw prefix of the reply (never decompressed), and a slow receiver only ever occupies
  its own slot of `_MAX_IN_FLIGHT`; the loop keeps claiming and sending others meanwhile. Any
  error in an attempt counts as "no answer" and is recorded like one.
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
# Attempts in flight at once, whatever their receivers do; more due ones wait for a free slot.
_MAX_IN_FLIGHT = 32
# How much of a receiver's reply is read (raw bytes, never decompressed): only its status counts.
_REPLY_PREFIX_BYTES = 1024


class WebhookOutbox(Protocol):
    """Where pending deliveries live: claims for one attempt, outcomes under the claim."""

    def claim_due_webhooks(
        self, token: str, lease_seconds: float, now: float | None = None, limit: int = _BATCH
    ) -> list[tuple[str, WebhookState]]: ...

    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool: ...


class _SharedStore(Protocol):
    """The S3 job store's webhook methods (one claim per compare-and-swap)."""

    def due_webhooks(self, now: float | None = None) -> list[str]: ...

    def claim_webhook(
        self, job_id: str, token: str, lease_seconds: float, now: float | None = None
    ) -> WebhookState | None: ...

    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool: ...


class SharedOutbox:
    """`WebhookOutbox` over the S3 job store: list the due ones, claim each by CAS."""

    def __init__(self, store: _SharedStore) -> None:
        self._store = store

    def claim_due_webhooks(
        self, token: str, lease_seconds: float, now: float | None = None, limit: int = _BATCH
    ) -> list[tuple[str, WebhookState]]:
        claimed: list[tuple[str, WebhookState]] = []
        for job_id in self._store.due_webhooks(now)[:limit]:
            state = self._store.claim_webhook(job_id, token, lease_seconds, now)
            if state is not None:
                claimed.append((job_id, state))
        return claimed

    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool:
        return self._store.settle_webhook(job_id, token, state)


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
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        timeout = self._policy.timeout_seconds
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=_MAX_IN_FLIGHT, max_keepalive_connections=0),
        )
        self._task = asyncio.create_task(self._loop(), name="webhook-delivery")

    def problems(self) -> list[str]:
        """The delivery loop, if it ended while it should be running (for `/health`)."""
        task = self._task
        return [ended_task(task)] if task is not None and task.done() and not self._stopping else []

    async def stop(self, grace_seconds: float) -> None:
        """Stop at once: an attempt cut short is claimed again after its lease."""
        self._stopping = True
        tasks = [t for t in (self._task, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)  # one that died was reported by `problems`
        if self._client is not None:
            await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                free = _MAX_IN_FLIGHT - len(self._in_flight)
                if free > 0:
                    claimed = await run_io(
                        self._outbox.claim_due_webhooks,
                        self._token,
                        self._policy.lease_seconds,
                        limit=min(free, _BATCH),
                    )
                    self._launch(claimed)
            except Exception:
                log.exception("webhook delivery round failed; retrying")
            metrics.WEBHOOK_ROUNDS.inc()
            await asyncio.sleep(self._policy.poll_seconds)

    def _launch(self, claimed: Sequence[tuple[str, WebhookState]]) -> None:
        """Start each claimed attempt as its own task: the loop never waits for a receiver."""
        for job_id, state in claimed:
            task = asyncio.create_task(self._attempt(job_id, state), name=f"webhook {job_id}")
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            # Not recorded: the claim lapses and the attempt is made again after its lease.
            log.error("%s: attempt not recorded", task.get_name(), exc_info=error)

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
        """One POST under one total deadline; its status, or None for no answer (timeout,
        refused, unreachable, a target the guard refuses, or any other error)."""
        try:
            async with asyncio.timeout(self._policy.timeout_seconds):
                return await self._post(state)
        except InvalidRequest as exc:
            log.warning("job %s: webhook target refused: %s", job_id, exc.message)
        except TimeoutError:
            log.info(
                "job %s: webhook POST took longer than %g s",
                job_id,
                self._policy.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            log.info("job %s: webhook POST failed: %s", job_id, type(exc).__name__)
        except Exception as exc:  # whatever it was, it is a failed attempt, not a lost one
            log.warning("job %s: webhook attempt failed: %r", job_id, exc)
        return None

    async def _post(self, state: WebhookState) -> int:
        assert self._client is not None
        checked = await net_guard.check_url(state.url, self._policy.allow_private, param=PARAM)
        target = net_guard.pin(checked)  # the address just checked, not a fresh lookup
        headers = {
            **signed_headers(self._signer, state, datetime.now(UTC)),
            "accept-encoding": "identity",
            **target.headers,
        }
        request = self._client.build_request(
            "POST", target.url, content=state.body, headers=headers, extensions=target.extensions
        )
        response = await self._client.send(request, stream=True)
        try:
            await _read_prefix(response)
        finally:
            await response.aclose()
        return response.status_code


async def _read_prefix(response: httpx.Response) -> bytes:
    """At most `_REPLY_PREFIX_BYTES` of the reply, raw: a compressed reply is never inflated."""
    prefix = b""
    async for chunk in response.aiter_raw(_REPLY_PREFIX_BYTES):
        prefix += chunk
        if len(prefix) >= _REPLY_PREFIX_BYTES:
            break
    return prefix[:_REPLY_PREFIX_BYTES]
