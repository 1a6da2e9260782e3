"""`languages[]` on both endpoint families: parsed in every spelling, validated with clear 400s,
and carried to the transcriber; per-segment languages and warnings in the JSON bodies."""

from __future__ import annotations

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

OPENAI = "/v1/audio/transcriptions"
JOBS = "/transcription"


async def post(
    client: httpx.AsyncClient, url: str, audio: bytes, data: list[tuple[str, str]]
) -> httpx.Response:
    """Post `data` pairs as a form; a name given twice repeats, as SDKs send arrays."""
    fields: dict[str, list[str]] = {}
    for name, value in data:
        fields.setdefault(name, []).append(value)
    return await client.post(url, files={"file": ("a.wav", audio)}, data=fields)


@pytest.mark.parametrize("url", [OPENAI, JOBS])
@pytest.mark.parametrize(
    "fields",
    [
        [("languages[]", "de"), ("languages[]", "FR"), ("languages[]", "de")],
        [("languages", "de,fr")],
        [("languages", "de"), ("languages", "fr")],
    ],
    ids=["bracketed", "comma-joined", "repeated"],
)
async def test_languages_reach_the_transcriber_once_each_in_order(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    url: str,
    fields: list[tuple[str, str]],
) -> None:
    backend = FakeTranscriber()
    async with running(fake_app(make_settings(), backend)) as client:
        data = [*fields, ("response_format", "verbose_json"), ("sync", "true")]
        response = await post(client, url, tone_bytes(tmp_path, 1.0), data)
    assert response.status_code == 200, response.text
    assert backend.calls[-1].languages == ("de", "fr")
    body: dict[str, Any] = response.json()
    assert body["warnings"] == []
    assert all(segment["language"] == body["language"] for segment in body["segments"])


@pytest.mark.parametrize("url", [OPENAI, JOBS])
@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ([("languages[]", "de"), ("languages[]", "xx")], "'xx' is not a language code"),
        ([("languages", "de,../etc")], "is not a language code"),
        ([("language", "de"), ("languages[]", "fr")], "not both"),
    ],
    ids=["unknown code", "not a code", "with language"],
)
async def test_bad_languages_are_a_clear_400(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    url: str,
    fields: list[tuple[str, str]],
    says: str,
) -> None:
    settings = make_settings()
    backend = FakeTranscriber()
    async with running(fake_app(settings, backend)) as client:
        response = await post(client, url, tone_bytes(tmp_path, 1.0), [*fields, ("sync", "true")])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "languages"
    assert error["type"] == "invalid_request_error"
    assert says in error["message"]
    assert backend.calls == []
    assert list((settings.jobs.data_dir / "jobs").iterdir()) == []
