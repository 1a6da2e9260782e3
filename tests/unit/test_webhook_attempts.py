"""The delivery loop against hostile receivers on loopback: one that drips its reply, one that
answers with a compression bomb, one whose URL cannot even be encoded. Each attempt is bounded
and recorded, and none of them delays another job's delivery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import anyio
import pytest

from tests.bombs import stacked_gzip
from tests.webhook_receiver import SECRET, Receiver, Reply, receiving
from whisperx_api.domain.webhook import WebhookState
from whisperx_api.jobs.webhooks import DeliveryPolicy, WebhookDeliverer

pytestmark = pytest.mark.anyio

TIMEOUT = 1.5  # the total deadline of one attempt
WAIT = 30.0  # generous bound for a wait on a loaded machine
BOMB_BYTES = 256 * 1024 * 1024  # decoded; the robustness suite sends 1 GiB to a real server


class MemoryOutbox:
    """The outbox contract in memory: due states are claimed for a lease, settled by claim."""

    def __init__(self) -> None:
        self.states: dict[str, WebhookState] = {}
        self.settled: dict[str, list[WebhookState]] = {}
        self.lock = threading.Lock()

    def add(self, job_id: str, url: str) -> None:
        self.states[job_id] = WebhookState(url, f"msg_{job_id}", '{"x": 1}', next_at=0.0)

    def claim_due_webhooks(
        self, token: str, lease_seconds: float, now: float | None = None, limit: int = 16
    ) -> list[tuple[str, WebhookState]]:
        at = time.time() if now is None else now
        with self.lock:
            due = [(k, s) for k, s in self.states.items() if s.due(at)][:limit]
            for job_id, state in due:
                self.states[job_id] = state.claimed(token, at + lease_seconds)
            return [(k, self.states[k]) for k, _ in due]

    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool:
        with self.lock:
            if self.states[job_id].claim != token:
                return False
            self.states[job_id] = state
            self.settled.setdefault(job_id, []).append(state)
            return True


def drip(stop: threading.Event) -> Reply:
    def reply(handler: BaseHTTPRequestHandler, status: int) -> None:
        handler.send_response(status)
        handler.send_header("content-length", "100000")
        handler.end_headers()
        while not stop.wait(0.3):  # a byte every 0.3 s: no single read ever times out
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return

    return reply


def bomb(handler: BaseHTTPRequestHandler, status: int) -> None:
    body = stacked_gzip(BOMB_BYTES)
    handler.send_response(status)
    handler.send_header("content-encoding", "gzip, gzip")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def deliverer(outbox: MemoryOutbox) -> WebhookDeliverer:
    policy = DeliveryPolicy(
        max_attempts=2, backoff_seconds=0.1, timeout_seconds=TIMEOUT, allow_private=True
    )
    return WebhookDeliverer(outbox, SECRET, policy)


async def test_a_dripping_receiver_neither_outlives_its_deadline_nor_delays_others(
    receiver: Receiver,
) -> None:
    outbox = MemoryOutbox()
    outbox.add("slow", receiver.hostile("/drip", drip(receiver.stop)))
    loop = deliverer(outbox)
    await loop.start()
    try:
        await _until(lambda: receiver.at("/drip"))
        outbox.add("fast", receiver.url("/ok"))
        added = time.time()
        await _until(lambda: "fast" in outbox.settled)
        fast_took = time.time() - added
        await _until(lambda: len(outbox.settled.get("slow", [])) == 2)
    finally:
        await loop.stop(0)
    assert outbox.states["fast"].delivered
    assert fast_took < TIMEOUT  # not queued behind the drip
    slow = outbox.states["slow"]
    assert (slow.attempts, slow.last_status, slow.gave_up) == (2, None, True)
    first, second = receiver.at("/drip")
    assert second.at - first.at < TIMEOUT + 5  # each attempt ended at its total deadline


async def test_a_bomb_reply_is_a_bounded_failed_attempt(receiver: Receiver) -> None:
    stacked_gzip(BOMB_BYTES)  # built before the attempt's deadline starts
    outbox = MemoryOutbox()
    outbox.add("bomb", receiver.hostile("/bomb", bomb, script=(500,)))
    loop = deliverer(outbox)
    await loop.start()
    try:
        await _until(lambda: outbox.states["bomb"].attempts == 1)
    finally:
        await loop.stop(0)
    assert outbox.states["bomb"].last_status == 500
    [received] = receiver.at("/bomb")
    assert received.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("url", ["http://\U0001f4a9.example/hook", "http://[::1/hook"])
async def test_an_attempt_that_raises_is_recorded_as_failed(url: str) -> None:
    outbox = MemoryOutbox()
    outbox.add("odd", url)
    loop = deliverer(outbox)
    await loop.start()
    try:
        await _until(lambda: outbox.states["odd"].gave_up)
    finally:
        await loop.stop(0)
    assert [s.attempts for s in outbox.settled["odd"]] == [1, 2]


async def _until(check: Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await anyio.sleep(0.02)
