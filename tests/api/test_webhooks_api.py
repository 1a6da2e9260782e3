"""`webhook_url` at submit time on the fake backend: what is refused (400 with the param) and
what a status response shows. Delivery itself is tested end to end (tests/integration)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from tests.webhook_receiver import SECRET
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

HOOK = "http://127.0.0.1:9/hook"  # never contacted here: the jobs' webhooks are not awaited


@cache
def audio() -> bytes:
    with tempfile.TemporaryDirectory() as where:
        return tone_bytes(Path(where), 2.0)


def hooked(make_settings: Callable[..., Settings], **groups: Any) -> Settings:
    fetch = groups.pop("fetch", {"allow_private_networks": True})
    return make_settings(webhooks={"secret": SECRET}, fetch=fetch, **groups)


async def post_job(client: httpx.AsyncClient, **data: str) -> httpx.Response:
    return await client.post("/transcription", files={"file": ("a.wav", audio())}, data=data)


async def post_openai(client: httpx.AsyncClient, **data: str) -> httpx.Response:
    return await client.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", audio())}, data=data
    )


def refused(response: httpx.Response, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["param"] == "webhook_url", error
    assert error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http://"])
async def test_a_non_http_url_is_a_400_on_both_families(
    make_settings: Callable[..., Settings], url: str
) -> None:
    async with running(fake_app(hooked(make_settings), FakeTranscriber())) as client:
        refused(await post_job(client, webhook_url=url), "invalid_url")
        refused(await post_openai(client, webhook_url=url, **{"async": "true"}), "invalid_url")


async def test_the_openai_endpoints_need_async(make_settings: Callable[..., Settings]) -> None:
    async with running(fake_app(hooked(make_settings), FakeTranscriber())) as client:
        error = refused(await post_openai(client, webhook_url=HOOK))
        assert "async=true" in error["message"]
        refused(
            await client.post(
                "/v1/audio/translations",
                files={"file": ("a.wav", audio())},
                data={"webhook_url": HOOK},
            )
        )


async def test_sync_jobs_cannot_have_a_webhook_and_a_webhook_makes_the_default_async(
    make_settings: Callable[..., Settings],
) -> None:
    settings = hooked(make_settings, jobs={"default_sync_mode": True})
    async with running(fake_app(settings, FakeTranscriber())) as client:
        refused(await post_job(client, webhook_url=HOOK, sync="true"))
        accepted = await post_job(client, webhook_url=HOOK)
        assert accepted.status_code == 202, accepted.text


async def test_without_a_secret_webhooks_are_refused(
    make_settings: Callable[..., Settings],
) -> None:
    async with running(fake_app(make_settings(), FakeTranscriber())) as client:
        error = refused(await post_job(client, webhook_url=HOOK), "webhooks_disabled")
        assert "WEBHOOKS__SECRET" in error["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ],
)
async def test_private_targets_are_refused_by_default(
    make_settings: Callable[..., Settings], url: str
) -> None:
    settings = hooked(make_settings, fetch={})
    async with running(fake_app(settings, FakeTranscriber())) as client:
        refused(await post_job(client, webhook_url=url), "url_not_allowed")
        refused(await post_openai(client, webhook_url=url, **{"async": "true"}), "url_not_allowed")


async def test_status_shows_the_webhook_only_when_one_was_asked_for(
    make_settings: Callable[..., Settings],
) -> None:
    # The busy job keeps the hooked one queued for the few requests below (a few ms each);
    # shutting down waits for it to end.
    settings = hooked(make_settings, jobs={"enable_concurrency": False})  # one job at a time
    async with running(fake_app(settings, FakeTranscriber(delay=10))) as client:
        busy = (await post_job(client)).json()["job_id"]
        hooked_job = await post_openai(client, webhook_url=HOOK, **{"async": "true"})
        assert hooked_job.status_code == 202, hooked_job.text
        job_id = hooked_job.json()["job_id"]
        plain = (await client.get(f"/transcription/{busy}")).json()
        shown = (await client.get(f"/transcription/{job_id}")).json()
        assert "webhook" not in plain
        assert shown["webhook"] == {"attempts": 0, "last_status": None, "delivered": False}
        assert (await client.delete(f"/transcription/{job_id}")).status_code == 200


async def test_an_overlong_url_is_a_400(make_settings: Callable[..., Settings]) -> None:
    url = "https://hooks.example.com/" + "a" * 2048
    async with running(fake_app(hooked(make_settings), FakeTranscriber())) as client:
        refused(await post_job(client, webhook_url=url), "invalid_value")
        refused(await post_openai(client, webhook_url=url, **{"async": "true"}), "invalid_value")
