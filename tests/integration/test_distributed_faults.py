"""Distributed mode under faults, on the real broker (Tansu) and a real S3 server (moto): a job
record no worker can read, and object storage that goes down under a worker and comes back.

The worker reaches S3 through a TCP proxy the test takes down and brings back, while the API
replica reaches S3 directly (so submits still work while the worker's storage is down).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.audio import DATA
from tests.distributed_stack import KEY, Stack, deployed
from tests.job_client import api_client, wait_for
from tests.job_client import job_status as status
from tests.job_client import submit_job as submit
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint
from tests.stack_tools import (
    all_committed,
    dead_letters,
    publish_raw,
    put_raw_record,
    stack_store,
)
from tests.tcp_proxy import TcpProxy, proxied
from tests.wer import normalized_wer
from whisperx_api.distributed.kafka_messages import JobMessage
from whisperx_api.domain.job import JobSpec
from whisperx_api.domain.options import TranscriptionOptions

__all__ = ["kafka_bootstrap", "s3_endpoint"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.slow

SHORT = "good_short.mp3"  # 7 s
REFERENCE = (
    "Good morning, and welcome to the weekly team meeting. "
    "Thank you for listening, and have a nice day."
)
JOB_SECONDS = 180  # generous: a loaded 2-core machine
# The worker's default holds several jobs, each retried in its own slot after its own backoff.
BACKOFF = re.compile(r"trying again in (\d+\.\d) s after (\d+) failure\(s\) in a row")


@pytest.fixture(scope="module")
def s3_proxy(s3_endpoint: str) -> Iterator[TcpProxy]:
    with proxied(s3_endpoint) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str,
    s3_endpoint: str,
    s3_proxy: TcpProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """One API replica (S3 direct) and one worker (S3 through the proxy)."""
    root = tmp_path_factory.mktemp("faults-stack")
    with deployed(kafka_bootstrap, s3_endpoint, root, apis=1, workers=0) as stack:
        stack.add_workers(1, S3__ENDPOINT_URL=s3_proxy.url)
        stack.wait_ready()
        yield stack


def _parse_error(raw: bytes) -> str:
    try:
        json.loads(raw)
    except ValueError as exc:
        return repr(exc)
    raise AssertionError("expected bytes that are not JSON")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"v": 2, "id": "x"}', "ValueError('unsupported job record version 2')"),
        (b"\x00not json{", _parse_error(b"\x00not json{")),
    ],
    ids=["newer-version", "damaged"],
)
def test_a_job_record_it_cannot_read_is_dead_lettered_and_the_worker_goes_on(
    stack: Stack, raw: bytes, problem: str
) -> None:
    (worker,) = stack.workers
    job_id = str(uuid.uuid4())
    stack_store(stack).insert(job_id, JobSpec(TranscriptionOptions(model="tiny.en")))
    put_raw_record(stack, job_id, raw)
    message = JobMessage(job_id=job_id, attempt=1, submitted_at=time.time())
    publish_raw(stack, message.to_bytes(), job_id.encode())
    reason = f"The stored record of job '{job_id}' cannot be read by this server ({problem})."
    wait_for(
        lambda: True if f"job {job_id}: message dead-lettered: {reason}" in worker.log() else None,
        "the worker to dead-letter the message",
        JOB_SECONDS,
    )
    letters = [letter for letter in dead_letters(stack) if letter.job_id == job_id]
    assert [(letter.attempts, letter.reason) for letter in letters] == [(0, reason)]
    assert worker.process.poll() is None, worker.log()[-4000:]
    with api_client(stack.apis[0], KEY) as client:  # and the next job runs as usual
        good = submit(client, SHORT)
        wait_for(
            lambda: True if status(client, good)["status"] == "Completed" else None,
            "the next job to complete",
            JOB_SECONDS,
        )
    assert f"job {job_id}: left for redelivery" not in worker.log()  # dead-lettered at once


def test_storage_down_under_the_worker_backs_off_then_the_job_completes(
    stack: Stack, s3_proxy: TcpProxy
) -> None:
    (worker,) = stack.workers
    # Earlier tests' messages settled first (on a loaded machine one may be redelivered late):
    # the outage must meet this test's job, not a leftover.
    wait_for(
        lambda: True if all_committed(stack) else None,
        "the earlier messages to be committed",
        JOB_SECONDS,
        0.5,
    )
    start = len(worker.log())  # what the worker logs from the outage on

    def since() -> str:
        return worker.log()[start:]

    s3_proxy.down()
    try:
        with api_client(stack.apis[0], KEY) as client:
            job_id = submit(client, SHORT, (DATA / SHORT).read_bytes())
            wait_for(
                lambda: True if len(BACKOFF.findall(since())) >= 4 else None,
                "the worker to back off four times",
                JOB_SECONDS,
            )
            s3_proxy.up()
            done = wait_for(
                lambda: b if (b := status(client, job_id))["status"] == "Completed" else None,
                "the job to complete once storage is back",
                JOB_SECONDS,
            )
            text = client.get(f"/transcription/{job_id}/result").text
    finally:
        s3_proxy.down()
        s3_proxy.up()
    backoffs = [(float(d), int(n)) for d, n in BACKOFF.findall(since())]
    # Bounded exponential from the first failure of the outage: 0.5 s, doubling, up to 30 s.
    assert backoffs[:4] == [(0.5, 1), (1.0, 2), (2.0, 3), (4.0, 4)], backoffs
    assert all(delay == min(30.0, 0.5 * 2 ** (n - 1)) for delay, n in backoffs), backoffs
    # Each message left for redelivery was followed by a backoff: no tight loop.
    redeliveries = since().count(": left for redelivery: Object storage is unreachable")
    assert 4 <= redeliveries <= len(backoffs), (redeliveries, backoffs)
    assert f"job {job_id}: left for redelivery" in since()
    assert done["attempts"] == 1, done
    assert normalized_wer(REFERENCE, text) <= 0.10, text
