"""CORS from SERVER__CORS_ORIGINS on every route and every error, as a browser sees it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

ALLOWED = "https://app.example"
DENIED = "https://evil.example"
KEY = {"Authorization": "Bearer sk-a"}


def cors_app(make_settings: Callable[..., Settings], **groups: object) -> FastAPI:
    settings = make_settings(api_key="sk-a", server={"cors_origins": [ALLOWED]}, **groups)
    return fake_app(settings, FakeTranscriber())


def preflight(origin: str, method: str = "GET") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_preflight_of_a_job_url_answers_allowed_origins_only(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="whisperx_api.access")
    async with running(cors_app(make_settings)) as client:
        allowed = await client.options("/transcription/some-id", headers=preflight(ALLOWED))
        denied = await client.options("/transcription/some-id", headers=preflight(DENIED))
    logged = [r.getMessage() for r in caplog.records if r.name == "whisperx_api.access"]
    assert [m.split(" ")[:3] for m in logged] == [
        ["OPTIONS", "/transcription/some-id", "200"],
        ["OPTIONS", "/transcription/some-id", "400"],
    ]
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "DELETE" in allowed.headers["access-control-allow-methods"]
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert allowed.headers["access-control-max-age"] == "86400"
    assert allowed.headers["allow"] == "OPTIONS, GET, DELETE"
    assert denied.status_code == 400
    assert cors_headers(denied) == {}
    assert denied.json()["error"]["code"] == "cors_not_allowed"


async def test_browser_preflight_of_the_submit_url_keeps_its_headers(
    make_settings: Callable[..., Settings],
) -> None:
    async with running(cors_app(make_settings)) as client:
        answer = await client.options("/transcription", headers=preflight(ALLOWED, "POST"))
    assert answer.status_code == 200
    assert answer.headers["allow"] == "OPTIONS, POST"
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert answer.headers["access-control-allow-methods"] == "OPTIONS, POST, GET, DELETE"
    allowed_headers = answer.headers["access-control-allow-headers"]
    assert "Authorization" in allowed_headers
    assert "Content-Type" in allowed_headers
    assert answer.headers["access-control-max-age"] == "86400"


async def test_errors_carry_cors_for_allowed_origins_only(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = cors_app(make_settings, limits={"max_file_size": 1000})
    async with running(app) as client:
        for origin in (ALLOWED, DENIED):
            headers = {"Origin": origin}
            missing = await client.get("/transcription/no-such-job", headers={**KEY, **headers})
            anonymous = await client.get("/v1/models", headers=headers)
            too_big = await client.post(
                "/v1/audio/transcriptions",
                headers={**KEY, **headers},
                files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
            )
            assert (missing.status_code, anonymous.status_code, too_big.status_code) == (
                404,
                401,
                413,
            )
            for response in (missing, anonymous, too_big):
                expected = {"access-control-allow-origin": ALLOWED} if origin == ALLOWED else {}
                assert cors_headers(response) == expected, (origin, response.status_code)


async def test_a_server_bug_carries_cors_too(make_settings: Callable[..., Settings]) -> None:
    class Exploding(FakeTranscriber):
        def available_models(self) -> list[str]:
            raise RuntimeError("boom")

    settings = make_settings(server={"cors_origins": [ALLOWED]})
    async with running(fake_app(settings, Exploding())) as client:
        response = await client.get("/v1/models", headers={"Origin": ALLOWED})
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.json()["error"]["type"] == "server_error"


async def test_a_successful_cross_origin_request_is_readable(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with running(cors_app(make_settings)) as client:
        response = await client.post(
            "/v1/audio/transcriptions",
            headers={**KEY, "Origin": ALLOWED},
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in response.headers["vary"]


async def test_the_lifespan_passes_through_the_whole_stack(
    make_settings: Callable[..., Settings],
) -> None:
    app = cors_app(make_settings)
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return incoming.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
