"""Faults the server must outlive: a full disk, a store that errors, a job it cannot read, a
worker loop that dies, and (distributed) a message it cannot read. Each case asserts the exact
answer and that nothing was lost or left behind."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint
from whisperx_api.config import Settings
from whisperx_api.errors import StorageError
from whisperx_api.jobs.store import SqliteJobStore

__all__ = ["kafka_bootstrap", "s3_endpoint"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.anyio

DEADLINE_SECONDS = 60.0
FULL = {
    "message": "The server's job storage is full; try again once space has been freed.",
    "type": "server_error",
    "param": None,
    "code": "insufficient_storage",
}
TEXT = "hello from the fake backend says goodbye"


class Fatal(BaseException):
    """What no guard catches: it ends the task it reaches, like a bug in the loop itself."""


@contextmanager
def database_full(store: SqliteJobStore) -> Iterator[None]:
    """A real SQLITE_FULL: the database may not grow (`max_page_count`), and the free space left
    in its pages is taken by old cancelled jobs (as on a disk full of them); on exit the space
    comes back."""
    conn = store._conn  # the store's own connection: max_page_count is per connection
    with store._lock:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        filled = 0
        for size in (2048, 512, 64, 1):
            while True:
                try:
                    conn.execute(
                        "INSERT INTO jobs (id, status, spec, created_at) "
                        "VALUES (?, 'Cancelled', ?, ?)",
                        (f"filler-{filled}", "x" * size, time.time()),
                    )
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorname != "SQLITE_FULL":
                        raise
                    break
                filled += 1
    try:
        yield
    finally:
        with store._lock:
            conn.execute("PRAGMA max_page_count = 1073741823")
            conn.execute("DELETE FROM jobs WHERE id LIKE 'filler-%'")


async def submit(client: httpx.AsyncClient, audio: bytes) -> httpx.Response:
    return await client.post("/transcription", files={"file": ("a.wav", audio)})


async def status_of(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/transcription/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_status(client: httpx.AsyncClient, job_id: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        body = await status_of(client, job_id)
        if body["status"] == wanted:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {wanted}: {body}")


async def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def result_text(client: httpx.AsyncClient, job_id: str) -> str:
    response = await client.get(f"/transcription/{job_id}/result")
    assert response.status_code == 200, response.text
    return response.text.strip()


def job_dirs(settings: Settings) -> list[Path]:
    """Job folders left under the data directory (audio of unfinished jobs)."""
    return [p for p in settings.jobs.data_dir.rglob("*") if p.is_dir() and len(p.name) == 36]


async def test_disk_full_at_submit_answers_507_and_the_store_works_once_space_is_back(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    app = fake_app(settings, FakeTranscriber())
    store = app.state.runtime.store
    audio = tone_bytes(tmp_path, 1.0)
    async with running(app) as client:
        with database_full(store):
            refused = await submit(client, audio)
            left_behind = job_dirs(settings)
            counts = (await client.get("/status")).json()["queue_state"]
        accepted = await submit(client, audio)
        job_id = accepted.json()["job_id"]
        await wait_status(client, job_id, "Completed")
        text = await result_text(client, job_id)
    assert refused.status_code == 507
    assert refused.json() == {"error": FULL}
    assert left_behind == []
    assert counts == {"queued_jobs": 0, "processing_jobs": 0}
    assert accepted.status_code == 202
    assert text == TEXT


async def test_disk_full_while_storing_a_result_loses_no_job(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(jobs={"max_attempts": 5})
    fake = FakeTranscriber(delay=1.0)
    app = fake_app(settings, fake)
    store = app.state.runtime.store
    caplog.set_level(logging.WARNING, logger="whisperx_api.jobs.worker")
    async with running(app) as client:
        job_id = (await submit(client, tone_bytes(tmp_path, 1.0))).json()["job_id"]
        await wait_status(client, job_id, "Processing")
        with database_full(store):
            await wait_until(
                lambda: f"job {job_id}: outcome not stored" in caplog.text,
                "the worker tried to store the result into a full database",
            )
        done = await wait_status(client, job_id, "Completed")
        text = await result_text(client, job_id)
        health = await client.get("/health")
    assert done.get("error") in (None, FULL["message"])  # stored on a retry, or on a new attempt
    assert text == TEXT
    assert health.json() == {"status": "healthy"}
    assert job_dirs(settings) == []


async def test_a_job_whose_stored_request_cannot_be_read_fails_with_the_reason(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    app = fake_app(settings, FakeTranscriber())
    poison = "00000000-0000-4000-8000-000000000001"
    with sqlite3.connect(settings.jobs.data_dir / "jobs.sqlite3") as db:  # a newer server's job
        db.execute(
            "INSERT INTO jobs (id, status, spec, created_at) VALUES (?, 'Queued', ?, ?)",
            (poison, json.dumps({"v": 2, "request": {}}), time.time()),
        )
    async with running(app) as client:
        failed = await wait_status(client, poison, "Failed")
        result = await client.get(f"/transcription/{poison}/result")
        good = (await submit(client, tone_bytes(tmp_path, 1.0))).json()["job_id"]
        await wait_status(client, good, "Completed")
        text = await result_text(client, good)
    reason = (
        "The job's stored request cannot be read by this server "
        "(ValueError('unsupported message version 2'))."
    )
    assert (failed["error"], failed["attempts"]) == (reason, 0)
    assert result.status_code == 500
    assert result.json() == {
        "error": {
            "message": reason,
            "type": "server_error",
            "param": None,
            "code": "unreadable_job",
        }
    }
    assert text == TEXT


async def test_the_worker_loop_survives_store_errors_and_backs_off(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One worker loop, so the log shows its own backoff growing.
    app = fake_app(make_settings(jobs={"enable_concurrency": False}), FakeTranscriber())
    store = app.state.runtime.store
    real_claim = store.claim
    failures = 0

    def flaky_claim(*args: Any) -> Any:
        nonlocal failures
        if failures < 3:
            failures += 1
            raise StorageError("The job database failed (SQLITE_IOERR).")
        return real_claim(*args)

    store.claim = flaky_claim
    caplog.set_level(logging.ERROR, logger="whisperx_api.jobs.worker")
    async with running(app) as client:
        job_id = (await submit(client, tone_bytes(tmp_path, 1.0))).json()["job_id"]
        await wait_status(client, job_id, "Completed")
        text = await result_text(client, job_id)
        health = await client.get("/health")
    assert failures == 3
    assert text == TEXT
    assert health.status_code == 200
    assert health.json() == {"status": "healthy"}
    delays = [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records if "a turn" in r.msg]
    assert delays == ["0.5 s", "1.0 s", "2.0 s"]


async def test_health_answers_503_once_a_worker_loop_has_died(
    make_settings: Callable[..., Settings],
) -> None:
    app = fake_app(make_settings(jobs={"enable_concurrency": False}), FakeTranscriber())
    store = app.state.runtime.store

    def fatal_claim(*_: Any) -> Any:
        raise Fatal("injected")

    async with running(app) as client:
        healthy = await client.get("/health")
        store.claim = fatal_claim
        app.state.runtime.jobs._signals.work_available.set()
        workers = app.state.runtime.workers
        await wait_until(lambda: bool(workers.problems()), "the worker loop died")
        health = await client.get("/health")
        healthcheck = await client.get("/healthcheck")
    assert healthy.json() == {"status": "healthy"}
    expected = {
        "error": {
            "message": "Unhealthy: worker-0 died: Fatal('injected').",
            "type": "server_error",
            "param": None,
            "code": "unhealthy",
        }
    }
    assert (health.status_code, health.json()) == (503, expected)
    assert (healthcheck.status_code, healthcheck.json()) == (503, expected)


async def test_health_answers_503_once_the_retention_sweeper_has_died(
    make_settings: Callable[..., Settings],
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    runtime = app.state.runtime

    async def fatal_sweep(older_than_seconds: float) -> list[str]:
        raise Fatal("sweeper bug")

    runtime.jobs.sweep_expired = fatal_sweep
    async with running(app) as client:
        await wait_until(lambda: bool(runtime.problems()), "the sweeper died")
        health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["error"] == {
        "message": "Unhealthy: the retention sweeper died: Fatal('sweeper bug').",
        "type": "server_error",
        "param": None,
        "code": "unhealthy",
    }


# Distributed mode: a message no worker can read


@pytest.mark.slow
def test_an_unknown_version_message_is_dead_lettered_with_the_reason_and_its_job_failed(
    kafka_bootstrap: str, s3_endpoint: str, tmp_path: Path
) -> None:
    from tests.distributed_stack import deployed
    from tests.job_client import wait_for
    from tests.stack_tools import dead_letters, publish_raw, stack_store
    from whisperx_api.distributed.kafka_messages import DeadLetter
    from whisperx_api.domain.job import JobSpec, JobStatus
    from whisperx_api.domain.options import TranscriptionOptions

    with deployed(kafka_bootstrap, s3_endpoint, tmp_path / "stack", apis=1, workers=1) as stack:
        store = stack_store(stack)
        job_id = str(uuid.uuid4())
        store.insert(job_id, JobSpec(TranscriptionOptions(model="tiny.en")))
        newer = {"v": 2, "job_id": job_id, "attempt": 1, "submitted_at": time.time()}
        partition, offset = publish_raw(stack, json.dumps(newer).encode(), job_id.encode())
        failed = wait_for(
            lambda: r if (r := store.get(job_id)) and r.status.is_terminal else None,
            "the job to fail",
            DEADLINE_SECONDS * 2,
        )
        letters = dead_letters(stack)
        (worker,) = stack.workers
        alive = worker.process.poll() is None
    problem = "unsupported JobMessage version 2: this build reads version 1"
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "unreadable_job")
    assert failed.error == f"The job's queue message cannot be read by this worker: {problem}"
    assert [replace(letter, failed_at=0) for letter in letters] == [
        DeadLetter(
            job_id=job_id,
            attempts=0,
            reason=f"unreadable job message at {stack.request_topic}[{partition}]@{offset}: "
            f"{problem}",
            failed_at=0,
        )
    ]
    assert alive


async def test_health_answers_503_once_the_webhook_loop_has_died(
    make_settings: Callable[..., Settings],
) -> None:
    app = fake_app(make_settings(webhooks={"secret": "whsec_" + "A" * 32}), FakeTranscriber())
    runtime = app.state.runtime

    def fatal_claim(*args: object, **kwargs: object) -> Any:
        raise Fatal("outbox bug")

    runtime.store.claim_due_webhooks = fatal_claim
    async with running(app) as client:
        await wait_until(lambda: bool(runtime.problems()), "the webhook loop died")
        health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["error"]["message"] == (
        "Unhealthy: webhook-delivery died: Fatal('outbox bug')."
    )
