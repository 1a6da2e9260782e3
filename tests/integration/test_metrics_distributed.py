"""Metrics in MODE=kafka: the API replica counts what it accepts and reports the shared queue on
`/metrics`; the worker counts what it runs on `WORKER__METRICS_PORT`. Real processes, a real
broker and S3 server, the bundled tiny.en model (see tests/distributed_stack.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.distributed_stack import KEY, deployed
from tests.job_client import api_client, submit_job, wait_for
from tests.kafka_broker import kafka_bootstrap
from tests.metrics_reader import Samples, parse, total, value
from tests.s3_server import s3_endpoint
from tests.server import free_port

__all__ = ["kafka_bootstrap", "s3_endpoint"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.slow

AUDIO = "good_short.mp3"  # 7 s of speech
JOBS = 3
JOB_SECONDS = 240


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    response = httpx.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return parse(response.text)


def is_completed(client: httpx.Client, job_id: str) -> bool | None:
    status = client.get(f"/transcription/{job_id}").json()["status"]
    assert status in {"Queued", "Processing", "Completed"}, status
    return True if status == "Completed" else None


def test_api_and_worker_each_expose_their_series(
    kafka_bootstrap: str, s3_endpoint: str, tmp_path: Path
) -> None:
    port = free_port()
    with deployed(
        kafka_bootstrap,
        s3_endpoint,
        tmp_path / "stack",
        apis=1,
        workers=1,
        WORKER__METRICS_PORT=str(port),
        WORKER__METRICS_HOST="127.0.0.1",
    ) as stack:
        (api,) = stack.apis
        worker_url = f"http://127.0.0.1:{port}/metrics"
        api_url = f"{api.base_url}/metrics"
        auth = {"Authorization": f"Bearer {KEY}"}
        assert httpx.get(api_url, timeout=30).status_code == 401, "metrics need the key"
        before = scrape(worker_url)

        with api_client(api, KEY) as client:
            ids = [submit_job(client, AUDIO) for _ in range(JOBS)]
            busy = scrape(api_url, auth)
            for job_id in ids:
                wait_for(
                    lambda job_id=job_id: is_completed(client, job_id), job_id, JOB_SECONDS, 0.5
                )
        worker = scrape(worker_url)
        replica = scrape(api_url, auth)

    # The replica: three accepted, the shared store's queue seen while they waited, empty after;
    # it runs nothing itself.
    assert value(replica, "whisperx_jobs_submitted_total") == JOBS
    assert value(busy, "whisperx_jobs_queued") + value(busy, "whisperx_jobs_processing") >= 1
    assert value(replica, "whisperx_jobs_queued") == 0
    assert value(replica, "whisperx_jobs_processing") == 0
    assert value(replica, "whisperx_jobs_total", outcome="completed") == 0
    assert total(replica, "whisperx_model_loads_total") == 0, "API replicas hold no models"
    submits = {"method": "POST", "route": "/transcription", "status": "202"}
    assert value(replica, "whisperx_http_requests_total", **submits) == JOBS

    # The worker: the jobs it ran, their audio and timing, the model it loaded.
    completed = value(worker, "whisperx_jobs_total", outcome="completed")
    assert completed - value(before, "whisperx_jobs_total", outcome="completed") == JOBS
    assert value(worker, "whisperx_jobs_submitted_total") == 0
    audio = value(worker, "whisperx_audio_seconds_processed_total")
    assert audio == pytest.approx(JOBS * 7.0, abs=JOBS * 0.5)
    assert value(worker, "whisperx_job_processing_seconds_count") == JOBS
    assert value(worker, "whisperx_job_processing_seconds_sum") > 0
    assert value(worker, "whisperx_job_realtime_factor_count") == JOBS
    assert value(worker, "whisperx_jobs_running") == 0
    assert total(worker, "whisperx_model_loads_total", stage="transcription") == 1
