"""`multichannel` and `channel_names[]` through the API on the fake backend: each channel is
transcribed on its own and labelled, silent and duplicated channels are skipped with a warning,
the option travels with async jobs through the job store, and bad requests get clear 400s.
(The real model on a real stereo call: tests/integration/test_multichannel.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import srt

from tests.audio import RATE
from tests.conftest import fake_app, running
from tests.fakes import FakeDiarizer, FakeTranscriber
from tests.stereo import many_channels, tone, write_channels
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

OPENAI = "/v1/audio/transcriptions"
URLS = [OPENAI, "/v1/audio/translations", "/transcription"]
SECONDS = 3.0


def stereo(tmp_path: Path, left: np.ndarray, right: np.ndarray) -> bytes:
    return write_channels(tmp_path / "call.flac", [left, right]).read_bytes()


async def post(
    settings: Settings,
    content: bytes,
    fields: dict[str, Any],
    url: str = OPENAI,
    backend: FakeTranscriber | None = None,
    diarizer: FakeDiarizer | None = None,
) -> httpx.Response:
    async with running(fake_app(settings, backend or FakeTranscriber(), diarizer)) as client:
        return await client.post(url, files={"file": ("call.flac", content)}, data=fields)


def assert_labelled(body: dict[str, Any], labels: dict[int, str]) -> None:
    segments = body["segments"]
    assert {s["channel"] for s in segments} == set(labels)
    for segment in segments:
        assert segment["speaker"] == labels[segment["channel"]]
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts)
    ids = [s.get("id") for s in segments]  # ints in verbose_json, "seg_N" in diarized_json
    assert ids in ([None] * len(ids), list(range(len(ids))), [f"seg_{i}" for i in range(len(ids))])
    for word in body.get("words", ()):
        assert word["speaker"] == labels[word["channel"]]


async def test_each_channel_is_transcribed_on_its_own_and_labelled(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber()
    content = stereo(tmp_path, tone(300.0), tone(700.0))
    fields = {"multichannel": "true", "response_format": "verbose_json"}
    response = await post(make_settings(), content, fields, backend=backend)
    assert response.status_code == 200, response.text
    body = response.json()
    assert backend.full_decodes() == pytest.approx([SECONDS, SECONDS], abs=0.01)
    assert_labelled(body, {0: "channel_0", 1: "channel_1"})
    assert len(body["words"]) == 2 * 7  # "hello from the fake backend says goodbye" each
    assert body["text"] == " ".join(s["text"].strip() for s in body["segments"])
    assert body["warnings"] == []


async def test_channel_names_replace_the_labels_in_every_shape(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    content = stereo(tmp_path, tone(300.0), tone(700.0))
    names = {"multichannel": "true", "channel_names[]": ["agent", "customer"]}
    settings = make_settings()
    diarized = await post(settings, content, {**names, "response_format": "diarized_json"})
    assert diarized.status_code == 200, diarized.text
    assert_labelled(diarized.json(), {0: "agent", 1: "customer"})
    subtitles = await post(settings, content, {**names, "response_format": "srt"})
    cues = list(srt.parse(subtitles.text))
    assert cues
    for cue in cues:  # one speaker prefix per cue: a cue never mixes channels
        prefixes = [p for p in ("[agent]: ", "[customer]: ") if p in cue.content]
        assert len(prefixes) == 1, cue.content


async def test_diarize_with_multichannel_takes_the_channel_as_speaker(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    diarizer = FakeDiarizer()
    content = stereo(tmp_path, tone(300.0), tone(700.0))
    fields = {"multichannel": "true", "diarize": "true", "response_format": "diarized_json"}
    response = await post(make_settings(), content, fields, diarizer=diarizer)
    assert response.status_code == 200, response.text
    assert diarizer.requests == []  # no diarization cost
    assert_labelled(response.json(), {0: "channel_0", 1: "channel_1"})


@pytest.mark.parametrize(
    ("right", "reason"),
    [(np.zeros(int(SECONDS * RATE), np.float32), "is silent"), (None, "duplicates channel 0")],
    ids=["silent", "duplicate"],
)
@pytest.mark.parametrize("fmt", ["verbose_json", "diarized_json"])
async def test_a_silent_or_copied_channel_is_skipped_with_a_warning(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    right: np.ndarray | None,
    reason: str,
    fmt: str,
) -> None:
    backend = FakeTranscriber()
    left = tone(300.0)
    content = stereo(tmp_path, left, left * 0.5 if right is None else right)
    fields = {"multichannel": "true", "response_format": fmt}
    response = await post(make_settings(), content, fields, backend=backend)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(backend.full_decodes()) == 1
    assert {s["channel"] for s in body["segments"]} == {0}
    (warning,) = body["warnings"]
    assert warning["code"] == "channel_skipped"
    assert f"Channel 1 {reason}" in warning["message"]
    assert warning["start"] == 0.0
    assert warning["end"] == pytest.approx(SECONDS, abs=0.01)


async def test_mono_with_multichannel_is_answered_as_without(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    content = write_channels(tmp_path / "mono.flac", [tone(300.0)]).read_bytes()
    fields = {"response_format": "verbose_json", "timestamp_granularities[]": "word"}
    settings = make_settings()
    plain = await post(settings, content, fields)
    multi = await post(settings, content, {**fields, "multichannel": "true"})
    assert plain.status_code == multi.status_code == 200, multi.text
    assert multi.json() == plain.json()
    assert "channel" not in multi.text


@pytest.mark.parametrize("url", [OPENAI, "/transcription"])
async def test_async_jobs_keep_the_option_through_the_store(
    make_settings: Callable[..., Settings], tmp_path: Path, url: str
) -> None:
    content = stereo(tmp_path, tone(300.0), tone(700.0))
    fields = {"multichannel": "true", "channel_names": ["a", "b"], "response_format": "json"}
    fields |= {"async": "true"} if url == OPENAI else {"sync": "false"}
    async with running(fake_app(make_settings(), FakeTranscriber())) as client:
        accepted = await client.post(url, files={"file": ("c.flac", content)}, data=fields)
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["job_id"]
        deadline = time.monotonic() + 120
        while (await client.get(f"/transcription/{job}")).json()["status"] != "Completed":
            assert time.monotonic() < deadline, "the job did not complete"
            time.sleep(0.05)
        result = await client.get(f"/transcription/{job}/result")
    assert result.status_code == 200, result.text
    body = json.loads(result.text)
    if url == OPENAI:
        assert body["text"]  # OpenAI's json: text only
    else:
        assert_labelled(body, {0: "a", 1: "b"})


BAD_FIELDS = [
    ({"channel_names[]": ["a", "b"]}, "channel_names"),  # without multichannel
    ({"multichannel": "true", "channel_names[]": ["a", "b", "c"]}, "channel_names"),
    ({"multichannel": "true", "channel_names[]": ["a"]}, "channel_names"),
    ({"multichannel": "true", "channel_names[]": ["a", "a"]}, "channel_names"),
    ({"multichannel": "true", "channel_names[]": ["a", "x" * 65]}, "channel_names"),
    ({"multichannel": "maybe"}, "multichannel"),
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize(("fields", "param"), BAD_FIELDS)
async def test_bad_channel_fields_are_refused_with_their_param(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    url: str,
    fields: dict[str, Any],
    param: str,
) -> None:
    settings = make_settings()
    content = stereo(tmp_path, tone(300.0), tone(700.0))
    response = await post(settings, content, fields, url=url)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert list((settings.jobs.data_dir / "jobs").iterdir()) == []


@pytest.mark.parametrize("url", URLS)
async def test_more_than_eight_channels_is_a_clear_400(
    make_settings: Callable[..., Settings], tmp_path: Path, url: str
) -> None:
    settings = make_settings()
    response = await post(settings, many_channels(tmp_path, 9), {"multichannel": "true"}, url)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "multichannel"
    assert "9 channels" in error["message"]
    assert "at most 8" in error["message"]


async def test_streaming_cannot_be_combined_with_multichannel(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    content = stereo(tmp_path, tone(300.0), tone(700.0))
    response = await post(make_settings(), content, {"multichannel": "true", "stream": "true"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "stream"
