"""End to end, Kafka mode: a job's webhook is owed by the shared S3 job record, not by the
worker that ran it. Two API replicas deliver (workers need no egress); the real tiny.en model
transcribes on a worker that is SIGKILLed right after it completes the job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.audio import DATA
from tests.distributed_stack import KEY, deployed, kill
from tests.job_client import api_client, submit_job, wait_for, wait_webhook_rounds
from tests.job_client import job_status as status
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint
from tests.webhook_receiver import SECRET, Receiver, dripping, receiving
from tests.wer import normalized_wer

__all__ = ["kafka_bootstrap", "s3_endpoint"]

pytestmark = pytest.mark.slow

SHORT = "good_short.mp3"  # 7 s of real speech
REFERENCE = (
    "Good morning, and welcome to the weekly team meeting. "
    "Thank you for listening, and have a nice day."
)
JOB_SECONDS = 180  # model load, group join and one job on a loaded 2-core box


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def test_a_worker_killed_right_after_completing_still_leads_to_one_delivery(
    kafka_bootstrap: str, s3_endpoint: str, receiver: Receiver, tmp_path: Path
) -> None:
    url = receiver.url("/kafka", [500, 200])  # one retry: a second claim, by either replica
    with deployed(
        kafka_bootstrap,
        s3_endpoint,
        tmp_path / "stack",
        apis=2,
        workers=1,
        WEBHOOKS__SECRET=SECRET,
        WEBHOOKS__BACKOFF_SECONDS="0.2",
        FETCH__ALLOW_PRIVATE_NETWORKS="true",
    ) as stack:
        [worker] = stack.workers
        first, second = stack.apis
        with api_client(first, KEY) as client_a, api_client(second, KEY) as client_b:
            audio = (DATA / SHORT).read_bytes()
            job_id = submit_job(client_a, SHORT, audio, response_format="json", webhook_url=url)
            wait_for(
                lambda: job_id in worker.completed() or None,
                "the worker to complete the job",
                JOB_SECONDS,
                0.02,
            )
            kill(worker.process)

            def delivered() -> dict[str, Any] | None:
                body = status(client_b, job_id)
                return body if body["webhook"]["delivered"] else None

            body = wait_for(delivered, "the webhook to be delivered", JOB_SECONDS, 0.1)
            assert body["status"] == "Completed"
            assert body["webhook"] == {"attempts": 2, "last_status": 200, "delivered": True}
            for client in (client_a, client_b):  # no duplicate in ten rounds of either replica
                wait_webhook_rounds(client, 10, JOB_SECONDS)
            attempts = receiver.at("/kafka")
            assert [a.answered for a in attempts] == [500, 200]
            assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]
            event = attempts[1].verified()
            assert event["type"] == "transcription.completed"
            assert event["data"]["result_url"] == f"/transcription/{job_id}/result"

            result = client_b.get(event["data"]["result_url"])
            assert result.status_code == 200, result.text
            assert normalized_wer(REFERENCE, result.json()["text"]) <= 0.10


def test_a_dripping_receiver_does_not_delay_another_jobs_webhook(
    kafka_bootstrap: str, s3_endpoint: str, receiver: Receiver, tmp_path: Path
) -> None:
    slow = receiver.hostile("/drip", dripping(receiver.stop))  # holds its attempt for 60 s
    with (
        deployed(
            kafka_bootstrap,
            s3_endpoint,
            tmp_path / "stack",
            apis=1,
            workers=1,
            WEBHOOKS__SECRET=SECRET,
            WEBHOOKS__TIMEOUT_SECONDS="60",
            FETCH__ALLOW_PRIVATE_NETWORKS="true",
        ) as stack,
        api_client(stack.apis[0], KEY) as client,
    ):
        audio = (DATA / SHORT).read_bytes()
        submit_job(client, SHORT, audio, response_format="json", webhook_url=slow)
        wait_for(lambda: receiver.at("/drip") or None, "the dripping attempt", JOB_SECONDS, 0.05)
        job_id = submit_job(
            client, SHORT, audio, response_format="json", webhook_url=receiver.url("/fast")
        )

        def completed() -> float | None:
            return time.time() if status(client, job_id)["status"] == "Completed" else None

        completed_at = wait_for(completed, "the second job", JOB_SECONDS, 0.05)
        [delivered] = wait_for(lambda: receiver.at("/fast") or None, "its webhook", 60, 0.05)
    assert delivered.at - completed_at <= 15.0
