"""Speakers through the HTTP API on fake backends: fields, validation, formats."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeDiarizer, FakeTranscriber
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

URL = "/v1/audio/transcriptions"


async def post(make_settings: Callable[..., Settings], tmp_path: Path, **data: Any) -> Any:
    diarizer = FakeDiarizer()
    app = fake_app(make_settings(), FakeTranscriber(), diarizer)
    async with running(app) as client:
        response = await client.post(
            URL, files={"file": ("a.wav", tone_bytes(tmp_path, 4.0))}, data=data
        )
    return response, diarizer


async def test_diarized_json_has_openai_shape_and_speakers(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    response, diarizer = await post(
        make_settings,
        tmp_path,
        diarize="true",
        response_format="diarized_json",
        min_speakers="2",
        max_speakers="2",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "transcribe"
    assert {s["type"] for s in body["segments"]} == {"transcript.text.segment"}
    pairs = [(s["speaker"], s["text"]) for s in body["segments"]]
    assert pairs == [
        ("SPEAKER_00", "hello from"),
        ("SPEAKER_01", "the fake"),
        ("SPEAKER_00", "backend says"),
        ("SPEAKER_01", "goodbye"),
    ]
    assert [s["id"] for s in body["segments"]] == ["seg_0", "seg_1", "seg_2", "seg_3"]
    assert (diarizer.requests[0].min_speakers, diarizer.requests[0].max_speakers) == (2, 2)


async def test_words_carry_speakers_and_embeddings_ride_along(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    response, _ = await post(
        make_settings,
        tmp_path,
        diarize="true",
        speaker_embeddings="true",
        response_format="verbose_json",
        timestamp_granularities="word",
    )
    body = response.json()
    speakers = {w["speaker"] for w in body["words"]}
    assert speakers == {"SPEAKER_00", "SPEAKER_01"}
    assert set(body["speaker_embeddings"]) == {"SPEAKER_00", "SPEAKER_01"}


@pytest.mark.parametrize("fmt", ["srt", "vtt", "aud"])
async def test_subtitles_carry_speaker_prefixes_and_parse(
    make_settings: Callable[..., Settings], tmp_path: Path, fmt: str
) -> None:
    response, _ = await post(make_settings, tmp_path, diarize="true", response_format=fmt)
    text = response.text
    if fmt == "srt":
        contents = [c.content for c in srt.parse(text)]
        assert all(c.startswith("[SPEAKER_0") for c in contents)
    elif fmt == "vtt":
        contents = [c.text for c in webvtt.from_buffer(io.StringIO(text))]
        assert all(c.startswith("[SPEAKER_0") for c in contents)
    else:
        assert all(line.split("\t")[2].startswith("[[SPEAKER_0") for line in text.splitlines())


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"min_speakers": "3", "max_speakers": "2", "diarize": "true"}, "min_speakers"),
        ({"min_speakers": "2"}, "min_speakers"),
        ({"speaker_embeddings": "true"}, "speaker_embeddings"),
        ({"diarize": "true", "align": "false"}, "align"),
        ({"response_format": "diarized_json"}, "response_format"),
        ({"min_speakers": "0", "diarize": "true"}, "min_speakers"),
    ],
    ids=[
        "min above max",
        "count without diarize",
        "embeddings without diarize",
        "no align",
        "format without diarize",
        "zero",
    ],
)
async def test_speaker_field_validation(
    make_settings: Callable[..., Settings], tmp_path: Path, data: dict[str, str], param: str
) -> None:
    response, diarizer = await post(make_settings, tmp_path, **data)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert diarizer.requests == []


async def test_job_endpoint_diarizes_and_passes_the_request_token(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    diarizer = FakeDiarizer()
    app = fake_app(make_settings(), FakeTranscriber(), diarizer)
    async with running(app) as client:
        response = await client.post(
            "/transcription",
            files={"file": ("a.wav", tone_bytes(tmp_path, 4.0))},
            data={
                "diarize": "true",
                "hf_token": "hf_abc",
                "sync": "true",
                "response_format": "json",
            },
        )
    body = json.loads(response.text)
    assert [s["speaker"] for s in body["segments"]] == ["SPEAKER_00", "SPEAKER_01"] * 2
    assert diarizer.requests[0].hf_token == "hf_abc"


@pytest.mark.parametrize("is_async", ["false", "true"])
async def test_pyannote_without_a_token_is_a_clear_400_at_submit(
    make_settings: Callable[..., Settings], tmp_path: Path, is_async: str
) -> None:
    from whisperx_api.api.app import create_app
    from whisperx_api.pipeline.registry import default_registry
    from whisperx_api.runtime.embedded import build_embedded

    settings = make_settings(backends={"transcription": "fake", "diarization": "pyannote"})
    registry = default_registry()
    registry.register_transcription("fake", lambda _s: FakeTranscriber())
    app = create_app(settings, build_embedded(settings, registry))
    async with running(app) as client:
        response = await client.post(
            URL,
            files={"file": ("a.wav", tone_bytes(tmp_path, 2.0))},
            data={"diarize": "true", "async": is_async},
        )
        queued = (await client.get("/status")).json()["queue_state"]["queued_jobs"]
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_hf_token"
    assert queued == 0  # refused before a job existed, not failed later


async def test_diarize_model_lifecycle_routes(make_settings: Callable[..., Settings]) -> None:
    app = fake_app(make_settings(), FakeTranscriber(), FakeDiarizer())
    async with running(app) as client:
        loaded = await client.post("/diarize_models/load", data={"model": "fake"})
        listed = await client.get("/diarize_models/list")
        unloaded = await client.post("/diarize_models/unload", data={"model": "fake"})
        again = await client.post("/diarize_models/unload", data={"model": "fake"})
        aligned = await client.get("/align_models/list")
    assert loaded.json() == {"status": "success", "model": "fake"}
    assert listed.json() == {"models": ["fake"]}
    assert unloaded.json() == {"status": "success", "model": "fake"}
    assert again.status_code == 404
    assert aligned.json() == {"models": []}
