"""`/metrics` on the fake backend through the real app, runtime and worker pool: who may read it,
and that the job, queue and HTTP series move with real requests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.api.test_jobs_api import submit, wait_status
from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from tests.metrics_reader import Samples, delta, parse, total, value
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

KEY = "sk-metrics"
AUTH = {"Authorization": f"Bearer {KEY}"}


async def scrape(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Samples:
    response = await client.get("/metrics", headers=headers or AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def test_metrics_need_a_key_when_auth_is_on(make_settings: Callable[..., Settings]) -> None:
    app = fake_app(make_settings(api_key=KEY), FakeTranscriber())
    async with running(app) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        keyed = await client.get("/metrics", headers=AUTH)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert wrong.status_code == 401
    assert keyed.status_code == 200
    assert "whisperx_jobs_total" in keyed.text


async def test_metrics_public_when_configured(make_settings: Callable[..., Settings]) -> None:
    app = fake_app(make_settings(api_key=KEY, metrics={"public": True}), FakeTranscriber())
    async with running(app) as client:
        anonymous = await client.get("/metrics")
        job = await client.post("/transcription", files={"file": ("a.wav", b"x")})
    assert anonymous.status_code == 200
    assert job.status_code == 401, "public metrics must not open the API"


async def test_job_series_move_with_real_jobs(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(api_key=KEY), FakeTranscriber(delay=0.3))
    async with running(app) as client:
        before = await scrape(client)
        good = [await submit(client, tone_bytes(tmp_path, 2.0), KEY) for _ in range(2)]
        poison = await submit(client, tone_bytes(tmp_path, 0.2, "short.wav"), KEY)
        during = await scrape(client)
        for job_id in good:
            await wait_status(client, job_id, "Completed", KEY)
        await wait_status(client, poison, "Failed", KEY)
        await client.get(f"/transcription/{good[0]}/result", headers=AUTH)
        await client.get("/no/such/page", headers=AUTH)
        await client.request("BREW", "/coffee", headers=AUTH)
        after = await scrape(client)

    assert delta(before, after, "whisperx_jobs_submitted_total") == 3
    assert delta(before, after, "whisperx_jobs_total", outcome="completed") == 2
    assert delta(before, after, "whisperx_jobs_total", outcome="failed") == 1
    assert delta(before, after, "whisperx_jobs_total", outcome="retried") == 2  # 3 attempts
    assert delta(before, after, "whisperx_audio_seconds_processed_total") == pytest.approx(4.0)
    assert delta(before, after, "whisperx_job_processing_seconds_count") == 2
    processing = delta(before, after, "whisperx_job_processing_seconds_sum")
    assert processing >= 2 * 0.3, "each fake job sleeps 0.3 s"
    assert delta(before, after, "whisperx_job_realtime_factor_count") == 2
    rtf = delta(before, after, "whisperx_job_realtime_factor_sum")
    assert rtf == pytest.approx(processing / 2.0, rel=0.01)

    # While the three jobs were waiting or running the store held them; afterwards nothing.
    assert value(during, "whisperx_jobs_queued") + value(during, "whisperx_jobs_processing") >= 1
    assert value(after, "whisperx_jobs_queued") == 0
    assert value(after, "whisperx_jobs_processing") == 0
    assert value(after, "whisperx_jobs_running") == 0

    # Routes by template, never by path; unmatched paths share one label.
    status_route = {"method": "GET", "route": "/transcription/{job_id}", "status": "200"}
    assert delta(before, after, "whisperx_http_requests_total", **status_route) >= 3
    submits = {"method": "POST", "route": "/transcription", "status": "202"}
    assert delta(before, after, "whisperx_http_requests_total", **submits) == 3
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert delta(before, after, "whisperx_http_requests_total", **unmatched) == 1
    brew = total(after, "whisperx_http_requests_total", method="OTHER", route="<unmatched>")
    assert brew - total(before, "whisperx_http_requests_total", method="OTHER") == 1
    assert total(after, "whisperx_http_requests_total", method="BREW") == 0
    assert not [labels for (_, labels) in after if ("route", f"/transcription/{good[0]}") in labels]
    assert total(after, "whisperx_http_request_duration_seconds_count") > 0

    # Declared from the start, at zero until a webhook is attempted.
    for outcome in ("delivered", "retried", "failed"):
        assert ("whisperx_webhook_deliveries_total", frozenset({("outcome", outcome)})) in after


async def test_cancelled_jobs_are_counted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(api_key=KEY, jobs={"enable_concurrency": False})  # one at a time
    app = fake_app(settings, FakeTranscriber(delay=2.0))
    async with running(app) as client:
        before = await scrape(client)
        running_job = await submit(client, tone_bytes(tmp_path, 1.0), KEY)
        queued = await submit(client, tone_bytes(tmp_path, 1.0), KEY)
        await wait_status(client, running_job, "Processing", KEY)
        busy = await scrape(client)
        cancelled = await client.delete(f"/transcription/{queued}", headers=AUTH)
        after = await scrape(client)
        await wait_status(client, running_job, "Completed", KEY)
    assert cancelled.status_code == 200
    assert value(busy, "whisperx_jobs_running") == 1
    assert value(busy, "whisperx_jobs_processing") == 1
    assert value(busy, "whisperx_jobs_queued") == 1
    assert delta(before, after, "whisperx_jobs_total", outcome="cancelled") == 1
    assert value(after, "whisperx_jobs_queued") == 0
