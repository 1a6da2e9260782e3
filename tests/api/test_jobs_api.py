"""The job API on the fake backend: CORS, ownership, poison jobs, counts, retention,
sync timeouts and formats."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio


async def submit(
    client: httpx.AsyncClient, audio: bytes, key: str | None = None, **data: str
) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await client.post(
        "/transcription", files={"file": ("a.wav", audio)}, data=data, headers=headers
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


async def wait_status(
    client: httpx.AsyncClient, job_id: str, wanted: str, key: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for _ in range(400):
        body: dict[str, Any] = (
            await client.get(f"/transcription/{job_id}", headers=headers)
        ).json()
        if body["status"] == wanted:
            return body
        await asyncio.sleep(0.025)
    raise AssertionError(f"job {job_id} never reached {wanted}: {body}")


async def test_preflight_allows_listed_origins_only(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(api_key="sk-a", server={"cors_origins": ["https://app.example"]})
    app = fake_app(settings, FakeTranscriber())
    async with running(app) as client:
        allowed = await client.options("/transcription", headers={"Origin": "https://app.example"})
        denied = await client.options("/transcription", headers={"Origin": "https://evil.example"})
        bare = await client.options("/transcription")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["access-control-max-age"] == "86400"
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert allowed.headers["allow"] == "OPTIONS, POST, GET, DELETE"
    assert "access-control-allow-origin" not in denied.headers
    assert denied.headers["allow"] == "OPTIONS, POST, GET, DELETE"
    assert bare.status_code == 200


async def test_jobs_are_visible_only_to_their_key(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('{"sk-alice": "alice", "sk-bob": "bob"}')
    app = fake_app(make_settings(api_keys_file=keys), FakeTranscriber())
    async with running(app) as client:
        job_id = await submit(client, tone_bytes(tmp_path, 1.0), key="sk-alice")
        await wait_status(client, job_id, "Completed", key="sk-alice")
        bob = {"Authorization": "Bearer sk-bob"}
        for method, path in (
            ("GET", f"/transcription/{job_id}"),
            ("GET", f"/transcription/{job_id}/result"),
            ("DELETE", f"/transcription/{job_id}"),
        ):
            response = await client.request(method, path, headers=bob)
            assert response.status_code == 404, (method, path)
        mine = await client.get(
            f"/transcription/{job_id}/result", headers={"Authorization": "Bearer sk-alice"}
        )
    assert mine.status_code == 200


async def test_without_auth_anyone_with_the_id_sees_the_job(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        job_id = await submit(client, tone_bytes(tmp_path, 1.0))
        body = await wait_status(client, job_id, "Completed")
    assert body["job_id"] == job_id


async def test_poison_job_fails_after_its_attempts_while_others_complete(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(jobs={"max_attempts": 2}), FakeTranscriber())
    async with running(app) as client:
        poison = await submit(client, tone_bytes(tmp_path, 0.2, "short.wav"))
        good = [await submit(client, tone_bytes(tmp_path, 1.0)) for _ in range(2)]
        failed = await wait_status(client, poison, "Failed")
        for job_id in good:
            await wait_status(client, job_id, "Completed")
        result = await client.get(f"/transcription/{poison}/result")
    assert failed["attempts"] == 2
    assert "failed after 2 attempt(s)" in failed["error"]
    assert "always fails on very short audio" in failed["error"]
    assert result.status_code == 500
    assert result.json()["error"]["message"] == failed["error"]


async def test_status_counts_follow_the_queue(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(jobs={"enable_concurrency": False})  # one job at a time
    app = fake_app(settings, FakeTranscriber(delay=0.6))
    async with running(app) as client:
        ids = [await submit(client, tone_bytes(tmp_path, 1.0)) for _ in range(3)]
        await wait_status(client, ids[0], "Processing")
        busy = (await client.get("/status")).json()
        await wait_status(client, ids[-1], "Completed")
        idle = (await client.get("/status")).json()
    assert busy["queue_state"] == {"queued_jobs": 2, "processing_jobs": 1}
    assert idle["queue_state"] == {"queued_jobs": 0, "processing_jobs": 0}
    assert busy["error"] is None
    assert set(busy) == {"server", "processing", "resources", "security", "queue_state", "error"}
    assert busy["processing"]["concurrent_mode"] is False


async def test_default_settings_run_jobs_at_once(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber(delay=5.0)
    app = fake_app(make_settings(), backend)
    async with running(app) as client:
        ids = [await submit(client, tone_bytes(tmp_path, 1.0)) for _ in range(3)]
        for job_id in ids:
            await wait_status(client, job_id, "Processing")
        busy = (await client.get("/status")).json()
        for job_id in ids:
            await wait_status(client, job_id, "Completed")
    assert busy["queue_state"] == {"queued_jobs": 0, "processing_jobs": 3}
    assert busy["processing"]["concurrent_mode"] is True
    assert busy["processing"]["max_concurrent_jobs"] == 16
    assert backend.max_running == 3


async def test_queue_position_is_a_batch_number_in_concurrent_mode(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(jobs={"enable_concurrency": True, "max_concurrent_jobs": 2})
    app = fake_app(settings, FakeTranscriber(delay=1.0))
    async with running(app) as client:
        ids = [await submit(client, tone_bytes(tmp_path, 1.0)) for _ in range(6)]
        await wait_status(client, ids[1], "Processing")
        positions = [
            (await client.get(f"/transcription/{job_id}")).json().get("queue_position")
            for job_id in ids[2:]
        ]
    assert positions == [1, 1, 2, 2]


async def test_retention_sweep_deletes_expired_jobs_only(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(jobs={"enable_concurrency": False})  # one job at a time
    app = fake_app(settings, FakeTranscriber(delay=2.0))
    async with running(app) as client:
        old_done = await submit(client, tone_bytes(tmp_path, 1.0))
        old_running = await submit(client, tone_bytes(tmp_path, 1.0))
        fresh = await submit(client, tone_bytes(tmp_path, 1.0))
        await client.delete(f"/transcription/{fresh}")  # cancelled, but young
        await wait_status(client, old_done, "Completed")
        await wait_status(client, old_running, "Processing")
        with sqlite3.connect(settings.jobs.data_dir / "jobs.sqlite3") as db:
            db.execute(
                "UPDATE jobs SET created_at = 0, finished_at = 1 WHERE id IN (?, ?)",
                (old_done, old_running),
            )
        deleted = await app.state.runtime.jobs.sweep_expired(3600)
        states = {
            job_id: (await client.get(f"/transcription/{job_id}")).status_code
            for job_id in (old_done, old_running, fresh)
        }
    assert deleted == [old_done]
    assert states == {old_done: 404, old_running: 200, fresh: 200}


async def test_periodic_sweep_runs_on_its_interval(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(jobs={"retention_hours": 0.0002, "cleanup_interval_hours": 0.0001})
    app = fake_app(settings, FakeTranscriber())
    async with running(app) as client:
        job_id = await submit(client, tone_bytes(tmp_path, 1.0))
        await wait_status(client, job_id, "Completed")
        for _ in range(100):
            if (await client.get(f"/transcription/{job_id}")).status_code == 404:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the expired job was never swept")


async def test_a_failing_sweep_is_logged_and_the_next_one_still_runs(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(jobs={"retention_hours": 0.0002, "cleanup_interval_hours": 0.0001})
    app = fake_app(settings, FakeTranscriber())
    store = app.state.runtime.store
    real_expired = store.expired
    failures = 0

    def flaky_expired(before: float) -> list[str]:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise sqlite3.OperationalError("disk I/O error")
        result: list[str] = real_expired(before)
        return result

    store.expired = flaky_expired
    async with running(app) as client:
        job_id = await submit(client, tone_bytes(tmp_path, 1.0))
        await wait_status(client, job_id, "Completed")
        for _ in range(200):
            if (await client.get(f"/transcription/{job_id}")).status_code == 404:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the sweeper stopped after a failed sweep")
    assert failures == 2
    assert "retention sweep failed" in caplog.text


async def test_sync_timeout_answers_504_and_the_job_goes_on(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(jobs={"sync_timeout_seconds": 0.3})
    app = fake_app(settings, FakeTranscriber(delay=1.0))
    async with running(app) as client:
        response = await client.post(
            "/transcription",
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
            data={"sync": "true"},
        )
        body = response.json()
        await wait_status(client, body["job_id"], "Completed")
        result = await client.get(f"/transcription/{body['job_id']}/result")
    assert response.status_code == 504
    assert body["error"]["type"] == "timeout_error"
    assert result.status_code == 200


async def test_sync_and_default_modes(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(jobs={"default_sync_mode": True}), FakeTranscriber())
    async with running(app) as client:
        by_default = await client.post(
            "/transcription", files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))}
        )
        forced_async = await client.post(
            "/transcription",
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
            data={"sync": "false"},
        )
    assert by_default.status_code == 200
    assert by_default.text == "hello from the fake backend says goodbye\n"
    assert forced_async.status_code == 202


@pytest.mark.parametrize(
    ("fmt", "check"),
    [
        ("txt", lambda r: r.text == "hello from the fake backend says goodbye\n"),
        (
            "json",
            lambda r: (
                set(r.json()) == {"text", "language", "segments"} and r.json()["language"] == "en"
            ),
        ),
        ("srt", lambda r: r.text.startswith("1\n")),
        ("vtt", lambda r: r.text.startswith("WEBVTT")),
        ("tsv", lambda r: r.text.startswith("start\tend\ttext\n")),
        (
            "aud",
            lambda r: r.text.count("\t") == 2 and r.text.endswith("fake backend says goodbye\n"),
        ),
        ("verbose_json", lambda r: r.json()["task"] == "transcribe"),
    ],
)
async def test_result_formats(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    fmt: str,
    check: Callable[[httpx.Response], bool],
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        job_id = await submit(client, tone_bytes(tmp_path, 1.0), response_format=fmt)
        await wait_status(client, job_id, "Completed")
        result = await client.get(f"/transcription/{job_id}/result")
    assert result.status_code == 200
    assert check(result)


async def test_result_before_completion_is_409_and_after_delivery_404(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    app = fake_app(settings, FakeTranscriber(delay=0.5))
    async with running(app) as client:
        job_id = await submit(client, tone_bytes(tmp_path, 1.0))
        early = await client.get(f"/transcription/{job_id}/result")
        await wait_status(client, job_id, "Completed")
        first = await client.get(f"/transcription/{job_id}/result")
        second = await client.get(f"/transcription/{job_id}/result")
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "job_not_ready"
    assert (first.status_code, second.status_code) == (200, 404)
    assert not (settings.jobs.data_dir / "jobs" / job_id).exists()


async def test_per_request_device_is_checked(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    async with running(app) as client:
        cuda = await client.post(
            "/transcription",
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
            data={"device": "cuda"},
        )
        cpu = await submit(client, tone_bytes(tmp_path, 1.0), device="cpu", device_index="0")
        await wait_status(client, cpu, "Completed")
    assert cuda.status_code == 400
    assert cuda.json()["error"]["param"] == "device"
    assert (backend.calls[0].device, backend.calls[0].device_index) == ("cpu", 0)
