"""Cue layout fields on every endpoint: honoured when sensible, a 400 with `param` when not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import srt

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

ENDPOINTS = ["/v1/audio/transcriptions", "/v1/audio/translations", "/transcription"]
BAD = [
    ("max_line_width", "0"),
    ("max_line_width", "-5"),
    ("max_line_width", "100000"),
    ("max_line_width", "1.5"),
    ("max_line_count", "0"),
    ("max_line_count", "500"),
    ("max_line_count", "two"),
    ("max_words_per_line", "0"),
    ("max_words_per_line", "-1"),
    ("max_words_per_line", "2.5"),
    ("max_words_per_line", "99999"),
]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(("field", "value"), BAD)
async def test_nonsensical_layout_values_are_refused_with_their_param(
    make_settings: Callable[..., Settings], tmp_path: Path, url: str, field: str, value: str
) -> None:
    settings = make_settings()
    async with running(fake_app(settings, FakeTranscriber())) as client:
        response = await client.post(
            url,
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
            data={field: value, "response_format": "srt"},
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field
    assert error["type"] == "invalid_request_error"
    assert list((settings.jobs.data_dir / "jobs").iterdir()) == []


def srt_lines(text: str) -> list[str]:
    return [line for cue in srt.parse(text) for line in cue.content.split("\n")]


@pytest.mark.parametrize("url", ENDPOINTS)
async def test_max_words_per_line_is_honoured(
    make_settings: Callable[..., Settings], tmp_path: Path, url: str
) -> None:
    data = {"response_format": "srt", "max_words_per_line": "2", "sync": "true"}
    async with running(fake_app(make_settings(), FakeTranscriber())) as client:
        response = await client.post(
            url, files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))}, data=data
        )
    assert response.status_code == 200, response.text
    lines = srt_lines(response.text)
    assert " ".join(lines).split() == ["hello", "from", "the", "fake", "backend", "says", "goodbye"]
    assert all(len(line.split()) <= 2 for line in lines)


@pytest.mark.parametrize("url", ENDPOINTS)
async def test_width_count_and_highlighting_are_honoured(
    make_settings: Callable[..., Settings], tmp_path: Path, url: str
) -> None:
    data = {
        "response_format": "srt",
        "max_line_width": "12",
        "max_line_count": "1",
        "highlight_words": "true",
        "sync": "true",
    }
    async with running(fake_app(make_settings(), FakeTranscriber())) as client:
        response = await client.post(
            url, files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))}, data=data
        )
    assert response.status_code == 200, response.text
    cues = list(srt.parse(response.text))
    assert sum("<u>" in cue.content for cue in cues) == 7
    assert all("\n" not in cue.content for cue in cues)
    assert all(len(cue.content.replace("<u>", "").replace("</u>", "")) <= 12 for cue in cues)
