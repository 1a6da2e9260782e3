"""`stream=true` on the fake backend: OpenAI's transcript.text.* events, errors as events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.test_openai_errors import assert_envelope
from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import POISON_SECONDS, FakeTranscriber
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

URL = "/v1/audio/transcriptions"
FAKE_TEXT = "hello from the fake backend says goodbye"


def events(response: httpx.Response) -> list[dict[str, Any]]:
    """The `data:` payloads of a server-sent event stream, in order."""
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in response.text.split("\n\n") if b.strip()]
    assert all(b.startswith("data: ") for b in blocks), response.text
    return [json.loads(b.removeprefix("data: ")) for b in blocks]


async def post_tone(
    app: FastAPI, tmp_path: Path, fields: dict[str, str], seconds: float = 1.0, url: str = URL
) -> tuple[httpx.Response, dict[str, Any]]:
    """One request with a tone of `seconds`, and `/status` right after it."""
    async with running(app) as client:
        response = await client.post(
            url, files={"file": ("a.wav", tone_bytes(tmp_path, seconds))}, data=fields
        )
        status: dict[str, Any] = (await client.get("/status")).json()
    return response, status


async def test_deltas_arrive_while_decoding_and_add_up_to_the_done_text(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(), FakeTranscriber(delay=3.0))
    response, status = await post_tone(app, tmp_path, {"stream": "true"}, seconds=2.0)
    assert response.status_code == 200
    stream = events(response)
    deltas = [e["delta"] for e in stream if e["type"] == "transcript.text.delta"]
    # The first segment was sent on its own, before the second existed: streamed, not replayed.
    assert deltas[0] == "hello from the fake"
    assert "".join(deltas) == FAKE_TEXT
    assert stream[-1] == {
        "type": "transcript.text.done",
        "text": FAKE_TEXT,
        "usage": {"type": "duration", "seconds": 2},
    }
    assert [e["type"] for e in stream[:-1]] == ["transcript.text.delta"] * len(deltas)
    assert status["queue_state"] == {"queued_jobs": 0, "processing_jobs": 0}


async def test_translations_stream_too(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    fields = {"stream": "true", "response_format": "text"}
    response, _ = await post_tone(app, tmp_path, fields, url="/v1/audio/translations")
    assert events(response)[-1]["text"] == FAKE_TEXT
    assert backend.calls[0].task == "translate"


async def test_streamed_jobs_skip_word_timestamps(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    await post_tone(app, tmp_path, {"stream": "true", "timestamp_granularities[]": "word"})
    assert backend.calls[0].word_timestamps is False


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"stream": "true", "async": "true"}, "stream"),
        ({"stream": "true", "response_format": "srt"}, "response_format"),
        ({"stream": "true", "response_format": "verbose_json"}, "response_format"),
    ],
)
async def test_combinations_that_cannot_stream_are_refused(
    make_settings: Callable[..., Settings], tmp_path: Path, fields: dict[str, str], param: str
) -> None:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    response, status = await post_tone(app, tmp_path, fields)
    assert response.status_code == 400
    assert_envelope(response.json(), "invalid_request_error", None, param)
    assert backend.calls == []
    assert status["queue_state"] == {"queued_jobs": 0, "processing_jobs": 0}


async def test_bad_audio_is_an_ordinary_error_before_the_stream_starts(
    make_settings: Callable[..., Settings],
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        response = await client.post(
            URL, files={"file": ("a.wav", b"not audio at all")}, data={"stream": "true"}
        )
    assert response.status_code == 400
    assert_envelope(response.json(), "invalid_request_error", "invalid_audio", "file")


async def test_a_job_that_fails_ends_the_stream_with_an_error_event(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(jobs={"max_attempts": 1}), FakeTranscriber())
    response, _ = await post_tone(app, tmp_path, {"stream": "true"}, seconds=POISON_SECONDS / 2)
    assert response.status_code == 200  # the stream had begun
    (last,) = events(response)
    assert_envelope(last, "server_error", "max_attempts", None)
    assert "always fails on very short audio" in last["error"]["message"]


async def test_the_sync_timeout_ends_the_stream_with_the_job_link(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(jobs={"sync_timeout_seconds": 0.5}), FakeTranscriber(delay=3.0))
    async with running(app) as client:
        response = await client.post(
            URL, files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))}, data={"stream": "true"}
        )
        last = events(response)[-1]
        job = await client.get(last["status_url"])
    assert last["error"]["type"] == "timeout_error"
    assert last["status_url"] == f"/transcription/{last['job_id']}"
    assert job.json()["status"] in {"Processing", "Completed"}  # it kept running
