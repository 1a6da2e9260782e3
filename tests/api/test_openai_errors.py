"""The bad-input table: each mistake gets its status and code in OpenAI's envelope, and
nothing is left on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.audio import DATA, tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

URL = "/v1/audio/transcriptions"
KEY = "sk-test-key"


def assert_envelope(body: dict[str, Any], type_: str, code: str | None, param: str | None) -> None:
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["type"] == type_
    assert error["code"] == code
    assert error["param"] == param


def upload(name: str, data: bytes) -> dict[str, tuple[str, bytes]]:
    return {"file": (name, data)}


CASES: list[tuple[str, Callable[[Path], dict[str, Any]], int, str, str | None, str | None]] = [
    (
        "empty file",
        lambda _: {"files": upload("a.wav", b"")},
        400,
        "invalid_request_error",
        "invalid_audio",
        "file",
    ),
    (
        "text named .wav",
        lambda _: {"files": upload("a.wav", (DATA / "bad_not_audio.wav").read_bytes())},
        400,
        "invalid_request_error",
        "invalid_audio",
        "file",
    ),
    (
        "truncated mp3",
        lambda _: {"files": upload("a.mp3", (DATA / "bad_truncated.mp3").read_bytes())},
        400,
        "invalid_request_error",
        "invalid_audio",
        "file",
    ),
    (
        "over size limit",
        lambda t: {"files": upload("a.wav", tone_bytes(t, 5.0))},
        413,
        "invalid_request_error",
        "file_too_large",
        "file",
    ),
    (
        "missing file",
        lambda _: {"data": {"model": "whisper-1"}},
        400,
        "invalid_request_error",
        None,
        "file",
    ),
    (
        "unknown model",
        lambda t: {"files": upload("a.wav", tone_bytes(t, 1.0)), "data": {"model": "no-such"}},
        400,
        "invalid_request_error",
        "model_not_found",
        "model",
    ),
    (
        "bad language",
        lambda t: {"files": upload("a.wav", tone_bytes(t, 1.0)), "data": {"language": "xx"}},
        400,
        "invalid_request_error",
        "invalid_value",
        "language",
    ),
    (
        "temperature NaN",
        lambda t: {"files": upload("a.wav", tone_bytes(t, 1.0)), "data": {"temperature": "nan"}},
        400,
        "invalid_request_error",
        "invalid_value",
        "temperature",
    ),
    (
        "temperature 2.0",
        lambda t: {"files": upload("a.wav", tone_bytes(t, 1.0)), "data": {"temperature": "2.0"}},
        400,
        "invalid_request_error",
        "invalid_value",
        "temperature",
    ),
    (
        "unknown format",
        lambda t: {
            "files": upload("a.wav", tone_bytes(t, 1.0)),
            "data": {"response_format": "docx"},
        },
        400,
        "invalid_request_error",
        "invalid_value",
        "response_format",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "status", "type_", "code", "param"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_input(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    kwargs: Callable[[Path], dict[str, Any]],
    status: int,
    type_: str,
    code: str | None,
    param: str | None,
) -> None:
    settings = make_settings(api_key=KEY, limits={"max_file_size": 100_000})
    app = fake_app(settings, FakeTranscriber())
    async with running(app) as client:
        response = await client.post(
            URL, headers={"Authorization": f"Bearer {KEY}"}, **kwargs(tmp_path)
        )
    assert response.status_code == status, response.text
    assert_envelope(response.json(), type_, code, param)
    assert list((settings.jobs.data_dir / "jobs").iterdir()) == []


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "Missing"),
        ({"Authorization": "Bearer wrong"}, "Incorrect"),
        ({"Authorization": KEY}, "Missing"),
    ],
    ids=["missing key", "wrong key", "no Bearer scheme"],
)
async def test_auth_refusals(
    make_settings: Callable[..., Settings], tmp_path: Path, headers: dict[str, str], why: str
) -> None:
    app = fake_app(make_settings(api_key=KEY), FakeTranscriber())
    async with running(app) as client:
        response = await client.post(
            URL, headers=headers, files=upload("a.wav", tone_bytes(tmp_path, 1.0))
        )
        health = await client.get("/health")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert_envelope(response.json(), "authentication_error", "invalid_api_key", None)
    assert why in response.json()["error"]["message"]
    assert health.status_code == 200


async def test_body_over_limit_is_refused_by_content_length(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(limits={"max_file_size": 1000}), FakeTranscriber())
    async with running(app) as client:
        response = await client.post(URL, files=upload("a.wav", tone_bytes(tmp_path, 10.0)))
    assert response.status_code == 413
    assert_envelope(response.json(), "invalid_request_error", "file_too_large", "file")


async def test_unknown_route_is_an_envelope(make_settings: Callable[..., Settings]) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


async def test_server_bug_is_a_generic_500(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    class Exploding(FakeTranscriber):
        def available_models(self) -> list[str]:
            raise RuntimeError("secret internal detail")

    app = fake_app(make_settings(), Exploding())
    async with running(app) as client:
        response = await client.get("/v1/models")
    assert response.status_code == 500
    body = response.json()
    assert_envelope(body, "server_error", None, None)
    assert "secret" not in response.text
