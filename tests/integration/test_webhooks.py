"""End to end, embedded mode: webhooks from real `whisperx-api serve` processes to a real receiver
on loopback, signatures checked with the `standardwebhooks` library.

The jobs run on the WhisperX command backend with the fake CLI (tests/fake_whisperx.py): what
is under test is the job's end and its callback, not the transcript. The Kafka-mode test
(test_distributed_webhooks.py) runs the real model.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.audio import DATA
from tests.job_client import api_client, submit_job, wait_for, wait_webhook_rounds
from tests.job_client import job_status as status
from tests.metrics_reader import parse, value
from tests.server import ServerProcess, serving, start_server, stop_server
from tests.webhook_receiver import SECRET, Received, Receiver, receiving

pytestmark = pytest.mark.slow

KEY = "sk-webhooks"
FAKE_CLI = Path(__file__).resolve().parents[1] / "fake_whisperx.py"
AUDIO = "good_short.mp3"
JOB_SECONDS = 60  # one fake job plus its webhook, on a loaded 2-core box
POLL = 0.05


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture
def env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    def build(**overrides: str) -> dict[str, str]:
        return {
            "API_KEY": KEY,
            "WHISPER_TMP_FILES": str(tmp_path / "data"),
            "WHISPER__CACHE_DIR": str(tmp_path / "cache"),
            "WHISPER__CMD": f"{sys.executable} {FAKE_CLI}",
            "WEBHOOKS__SECRET": SECRET,
            "WEBHOOKS__BACKOFF_SECONDS": "0.1",
            "FETCH__ALLOW_PRIVATE_NETWORKS": "true",
            "JOBS__MAX_ATTEMPTS": "1",
            "JOBS__SHUTDOWN_GRACE_SECONDS": "1",
            "ENABLE_CONCURRENCY": "false",  # one worker: a slow job holds the others queued
            **overrides,
        }

    return build


def api(server: ServerProcess) -> AbstractContextManager[httpx.Client]:
    return api_client(server, KEY)


def deliveries(receiver: Receiver, path: str, count: int) -> list[Received]:
    """Wait until `path` has received `count` POSTs; all of them."""

    def check() -> list[Received] | None:
        found = receiver.at(path)
        return found if len(found) >= count else None

    return wait_for(check, f"{count} POST(s) at {path}", JOB_SECONDS, POLL)


def settled(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job's status once its webhook was delivered."""

    def check() -> dict[str, Any] | None:
        body = status(client, job_id)
        return body if body.get("webhook", {}).get("delivered") else None

    return wait_for(check, f"job {job_id}'s webhook to be delivered", JOB_SECONDS, POLL)


def test_completed_failed_and_cancelled_jobs_each_get_one_signed_event(
    env: Callable[..., dict[str, str]], receiver: Receiver, tmp_path: Path
) -> None:
    with serving(env(), tmp_path / "server.log") as server, api(server) as client:
        slow = submit_job(client, AUDIO, model="slow")  # holds the one worker for 30 s
        done_url = receiver.url("/done")
        sdk = OpenAI(api_key=KEY, base_url=f"{server.base_url}/v1", max_retries=0)
        with (DATA / AUDIO).open("rb") as audio:  # as docs/webhooks.md shows it
            job = sdk.audio.transcriptions.create(
                model="whisper-1",
                file=audio,
                extra_body={"async": True, "webhook_url": done_url},
            )
        assert job.model_extra is not None
        completed = job.model_extra["job_id"]
        submit_job(client, AUDIO, model="fail", webhook_url=receiver.url("/failed"))
        cancelled = submit_job(client, AUDIO, webhook_url=receiver.url("/cancelled"))
        assert status(client, cancelled)["webhook"] == {
            "attempts": 0,
            "last_status": None,
            "delivered": False,
        }
        assert client.delete(f"/transcription/{cancelled}").status_code == 200
        assert client.delete(f"/transcription/{slow}").status_code in (200, 409)

        [cancel_event] = deliveries(receiver, "/cancelled", 1)
        [done_event] = deliveries(receiver, "/done", 1)
        [fail_event] = deliveries(receiver, "/failed", 1)

        event = cancel_event.verified()
        assert event["type"] == "transcription.cancelled"
        assert event["data"] == {
            "job_id": cancelled,
            "status": "Cancelled",
            "status_url": f"/transcription/{cancelled}",
        }
        event = done_event.verified()
        assert event["type"] == "transcription.completed"
        assert event["data"] == {
            "job_id": completed,
            "status": "Completed",
            "status_url": f"/transcription/{completed}",
            "result_url": f"/transcription/{completed}/result",
        }
        assert "text" not in done_event.body.decode()  # the transcript stays behind auth
        event = fail_event.verified()
        assert event["type"] == "transcription.failed"
        assert event["data"]["status"] == "Failed"
        # the command's exit status, never its stderr (which stays in the server log)
        assert "exited with code 3" in event["data"]["error"]
        assert "out of memory" not in event["data"]["error"]
        for received in (cancel_event, done_event, fail_event):
            stamp = received.verified()["timestamp"]
            assert stamp.endswith("Z")
            assert "T" in stamp
            assert received.headers["webhook-id"].startswith("msg_")

        assert settled(client, completed)["webhook"] == {
            "attempts": 1,
            "last_status": 200,
            "delivered": True,
        }
        # The result is behind auth, at the URL the event named.
        assert httpx.get(f"{server.base_url}/transcription/{completed}/result").status_code == 401
        result = client.get(f"/transcription/{completed}/result")
        assert result.status_code == 200
        assert "42 euros" in result.json()["text"]


def test_two_failures_then_success_makes_exactly_three_attempts_with_one_id(
    env: Callable[..., dict[str, str]], receiver: Receiver, tmp_path: Path
) -> None:
    flaky = receiver.url("/flaky", [500, 500, 200])
    with serving(env(), tmp_path / "server.log") as server, api(server) as client:
        job_id = submit_job(client, AUDIO, webhook_url=flaky)
        attempts = deliveries(receiver, "/flaky", 3)
        body = settled(client, job_id)
        assert body["webhook"] == {"attempts": 3, "last_status": 200, "delivered": True}
        # A fourth attempt would be due 2.4 s (24 x 0.1 s) after the third: watch twice as long
        # (a round sleeps 0.1 s, so 50 rounds take at least 5 s).
        wait_webhook_rounds(client, 50, JOB_SECONDS)
        assert len(receiver.at("/flaky")) == 3
        counted = parse(client.get("/metrics").text)
        attempts_by_outcome = {
            outcome: value(counted, "whisperx_webhook_deliveries_total", outcome=outcome)
            for outcome in ("delivered", "retried", "failed")
        }
        assert attempts_by_outcome == {"delivered": 1, "retried": 2, "failed": 0}
    assert [a.answered for a in attempts] == [500, 500, 200]
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1  # the same event, re-signed
    for attempt in attempts:
        assert attempt.verified()["data"]["job_id"] == job_id
    # Exponential backoff: 0.1 s, then 0.6 s (the loop polls every 0.1 s on top).
    assert attempts[1].at - attempts[0].at >= 0.1
    assert attempts[2].at - attempts[1].at >= 0.6


def test_a_pending_webhook_survives_a_restart(
    env: Callable[..., dict[str, str]], receiver: Receiver, tmp_path: Path
) -> None:
    # 10 s before the retry: time to stop the server after the first attempt.
    settings = env(WEBHOOKS__BACKOFF_SECONDS="10")
    url = receiver.url("/restart", [503, 200])
    log = tmp_path / "server.log"
    server = start_server(settings, log)
    try:
        with api(server) as client:
            job_id = submit_job(client, AUDIO, webhook_url=url)
            wait_for(
                lambda: status(client, job_id)["webhook"]["attempts"] == 1 or None,
                "the first attempt to be recorded",
                JOB_SECONDS,
                POLL,
            )
    finally:
        stop_server(server)
    stopped_at = time.time()
    assert len(receiver.at("/restart")) == 1
    with serving(settings, log) as restarted, api(restarted) as client:
        first, second = deliveries(receiver, "/restart", 2)
        assert settled(client, job_id)["webhook"] == {
            "attempts": 2,
            "last_status": 200,
            "delivered": True,
        }
    assert second.at > stopped_at  # sent by the restarted server
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.verified()["data"]["job_id"] == job_id
    assert first.answered == 503


def test_a_fetched_result_still_gets_its_webhook(
    env: Callable[..., dict[str, str]], receiver: Receiver, tmp_path: Path
) -> None:
    """The client fetches (and so deletes) the result while the webhook is still failing."""
    url = receiver.url("/late", [500, 500, 200])
    settings = env(WEBHOOKS__BACKOFF_SECONDS="1")
    with serving(settings, tmp_path / "server.log") as server, api(server) as client:
        job_id = submit_job(client, AUDIO, webhook_url=url)
        deliveries(receiver, "/late", 1)
        result = client.get(f"/transcription/{job_id}/result")
        assert result.status_code == 200
        assert client.get(f"/transcription/{job_id}").status_code == 404
        attempts = deliveries(receiver, "/late", 3)
    assert [a.answered for a in attempts] == [500, 500, 200]
    assert attempts[-1].verified()["data"]["result_url"] == f"/transcription/{job_id}/result"


def test_retention_keeps_a_job_until_its_webhook_settles(
    env: Callable[..., dict[str, str]], receiver: Receiver, tmp_path: Path
) -> None:
    """Jobs expire after 1.8 s here, swept every 0.36 s; the webhook's third attempt (the one
    answered 200) comes 7 s after the first."""
    url = receiver.url("/retained", [500, 500, 200])
    settings = env(
        WEBHOOKS__BACKOFF_SECONDS="1",
        WHISPER_JOB_RETENTION_HOURS="0.0005",
        WHISPER_CLEANUP_INTERVAL_HOURS="0.0001",
    )
    with serving(settings, tmp_path / "server.log") as server, api(server) as client:
        submitted = time.time()
        job_id = submit_job(client, AUDIO, webhook_url=url)
        deliveries(receiver, "/retained", 2)
        # Past its retention and swept since (the third attempt is still ~6 s away):
        time.sleep(max(0.0, submitted + 1.8 + 1.0 - time.time()))
        body = status(client, job_id)
        assert body["status"] == "Completed"
        assert body["webhook"]["delivered"] is False
        assert len(receiver.at("/retained")) == 2
        deliveries(receiver, "/retained", 3)
        wait_for(
            lambda: client.get(f"/transcription/{job_id}").status_code == 404 or None,
            "the delivered job to expire",
            JOB_SECONDS,
            POLL,
        )
