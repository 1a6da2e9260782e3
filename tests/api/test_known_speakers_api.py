"""Known speakers through the HTTP API on fake backends: names in every format, one name per
speaker, validation of the fields, and references that travel with an async job.

The fake diarizer embeds a reference of n whole seconds as SPEAKER_(n-2)'s voice (see
tests/fakes.py); the real model is tested in tests/integration/test_known_speakers.py.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
import srt
import webvtt

from tests.audio import tone_bytes
from tests.bombs import many_packet_audio
from tests.conftest import fake_app, running
from tests.fakes import FakeDiarizer, FakeTranscriber
from whisperx_api.config import Settings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.job import JobSpec
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.speakers import KnownSpeaker
from whisperx_api.jobs.messages import dump_spec, load_spec

pytestmark = pytest.mark.anyio

URL = "/v1/audio/transcriptions"


def data_url(tmp_path: Path, seconds: float, name: str) -> str:
    wav = tone_bytes(tmp_path, seconds, f"{name}.wav")
    return "data:audio/wav;base64," + base64.b64encode(wav).decode()


async def post(
    make_settings: Callable[..., Settings], tmp_path: Path, data: dict[str, Any]
) -> tuple[Any, FakeDiarizer]:
    diarizer = FakeDiarizer()
    app = fake_app(make_settings(), FakeTranscriber(), diarizer)
    async with running(app) as client:
        response = await client.post(
            URL, files={"file": ("a.wav", tone_bytes(tmp_path, 4.0))}, data=data
        )
    return response, diarizer


def known(tmp_path: Path, **voices: float) -> dict[str, list[str]]:
    return {
        "known_speaker_names[]": list(voices),
        "known_speaker_references[]": [data_url(tmp_path, s, n) for n, s in voices.items()],
    }


async def test_matched_speakers_are_named_in_diarized_json(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = {"diarize": "true", "response_format": "diarized_json", **known(tmp_path, Ann=2, Bob=3)}
    response, diarizer = await post(make_settings, tmp_path, data)
    assert response.status_code == 200, response.text
    speakers = [s["speaker"] for s in response.json()["segments"]]
    assert speakers == ["Ann", "Bob", "Ann", "Bob"]
    assert [round(c.duration) for c in diarizer.voice_clips] == [2, 3]
    assert diarizer.requests[0].want_embeddings


@pytest.mark.parametrize("fmt", ["verbose_json", "srt", "vtt"])
async def test_names_flow_into_every_format(
    make_settings: Callable[..., Settings], tmp_path: Path, fmt: str
) -> None:
    data = {"diarize": "true", "response_format": fmt, **known(tmp_path, Ann=2, Zed=5)}
    response, _ = await post(make_settings, tmp_path, data)
    assert response.status_code == 200, response.text
    if fmt == "verbose_json":
        body = response.json()
        labels = [s["speaker"] for s in body["segments"]]
        assert {w["speaker"] for w in body["words"]} == {"Ann", "SPEAKER_01"}
        assert "speaker_embeddings" not in body
    elif fmt == "srt":
        labels = [c.content.split("]")[0][1:] for c in srt.parse(response.text)]
    else:
        captions = webvtt.from_buffer(io.StringIO(response.text))
        labels = [c.text.split("]")[0][1:] for c in captions]
    assert labels == ["Ann", "SPEAKER_01", "Ann", "SPEAKER_01"]


async def test_two_references_never_claim_one_speaker(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    voices = {
        "known_speaker_names[]": ["Ann", "Eve"],
        "known_speaker_references[]": [
            data_url(tmp_path, 2, "ann"),
            data_url(tmp_path, 2.2, "eve"),
        ],
    }
    data = {"diarize": "true", "response_format": "diarized_json", **voices}
    response, _ = await post(make_settings, tmp_path, data)
    speakers = {s["speaker"] for s in response.json()["segments"]}
    assert speakers in ({"Ann", "SPEAKER_01"}, {"Eve", "SPEAKER_01"})


async def test_embeddings_are_named_when_asked_for(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = {
        "diarize": "true",
        "response_format": "verbose_json",
        "speaker_embeddings": "true",
        **known(tmp_path, Bob=3),
    }
    response, _ = await post(make_settings, tmp_path, data)
    assert set(response.json()["speaker_embeddings"]) == {"SPEAKER_00", "Bob"}


async def test_references_travel_with_an_async_job(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    diarizer = FakeDiarizer()
    app = fake_app(make_settings(), FakeTranscriber(), diarizer)
    data = {
        "diarize": "true",
        "response_format": "diarized_json",
        "async": "true",
        **known(tmp_path, Ann=2, Bob=3),
    }
    async with running(app) as client:
        accepted = await client.post(
            URL, files={"file": ("a.wav", tone_bytes(tmp_path, 4.0))}, data=data
        )
        assert accepted.status_code == 202, accepted.text
        status_url = accepted.json()["status_url"]
        for _ in range(600):
            status = (await client.get(status_url)).json()["status"]
            if status in ("Completed", "Failed"):
                break
            await anyio.sleep(0.05)
        result = await client.get(status_url + "/result")
    assert status == "Completed"
    assert [s["speaker"] for s in result.json()["segments"]] == ["Ann", "Bob", "Ann", "Bob"]


def test_references_round_trip_the_job_spec_and_stay_out_of_reprs() -> None:

    clip = np.sin(np.linspace(0, 300, 32_000)).astype(np.float32) * 0.5
    speaker = KnownSpeaker.from_samples("Ann", clip)
    spec = JobSpec(options=TranscriptionOptions(model="base", known_speakers=(speaker,)))
    loaded = load_spec(dump_spec(spec))
    assert loaded == spec
    assert np.max(np.abs(loaded.options.known_speakers[0].samples() - clip)) < 1e-4
    assert speaker.pcm16 not in repr(spec)
    assert json.loads(dump_spec(spec))["options"]["known_speakers"][0]["name"] == "Ann"


def _bad_cases(tmp_path: Path) -> list[tuple[dict[str, Any], str]]:
    two = data_url(tmp_path, 2, "two")
    return [
        (
            {"known_speaker_names[]": ["A", "B"], "known_speaker_references[]": [two]},
            "known_speaker_references",
        ),
        (
            {"known_speaker_names[]": ["A"], "known_speaker_references[]": ["https://x/a.wav"]},
            "known_speaker_references",
        ),
        (
            {
                "known_speaker_names[]": ["A"],
                "known_speaker_references[]": ["data:audio/wav;base64,@@"],
            },
            "known_speaker_references",
        ),
        (
            {
                "known_speaker_names[]": ["A"],
                "known_speaker_references[]": [
                    "data:audio/wav;base64," + base64.b64encode(b"no").decode()
                ],
            },
            "known_speaker_references",
        ),
        (
            {
                "known_speaker_names[]": ["A"],
                "known_speaker_references[]": [data_url(tmp_path, 1, "s")],
            },
            "known_speaker_references",
        ),
        (
            {
                "known_speaker_names[]": ["A"],
                "known_speaker_references[]": [data_url(tmp_path, 11, "l")],
            },
            "known_speaker_references",
        ),
        (
            {"known_speaker_names[]": list("ABCDE"), "known_speaker_references[]": [two] * 5},
            "known_speaker_names",
        ),
        (
            {"known_speaker_names[]": ["x" * 33], "known_speaker_references[]": [two]},
            "known_speaker_names",
        ),
        (
            {"known_speaker_names[]": ["A", "A"], "known_speaker_references[]": [two, two]},
            "known_speaker_names",
        ),
    ]


@pytest.mark.parametrize("case", range(9))
async def test_bad_known_speaker_fields_are_400_with_param(
    make_settings: Callable[..., Settings], tmp_path: Path, case: int
) -> None:
    fields, param = _bad_cases(tmp_path)[case]
    response, diarizer = await post(make_settings, tmp_path, {"diarize": "true", **fields})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param, response.json()
    assert diarizer.requests == []


async def test_known_speakers_need_diarization(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    response, _ = await post(make_settings, tmp_path, known(tmp_path, Ann=2))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "known_speaker_names"


async def test_a_reference_of_too_many_tiny_packets_is_refused_by_the_packet_budget(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    bomb = "data:audio/x-matroska;base64," + base64.b64encode(many_packet_audio(20_000)).decode()
    fields = {
        "diarize": "true",
        "known_speaker_names[]": ["A"],
        "known_speaker_references[]": [bomb],
    }
    response, diarizer = await post(make_settings, tmp_path, fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "known_speaker_references"
    assert "packets" in error["message"]
    assert diarizer.requests == []


async def test_references_are_decoded_by_the_runtime_clip_decoder(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    decoded: list[int] = []
    app = fake_app(make_settings(), FakeTranscriber(), FakeDiarizer())
    clips = app.state.runtime.clips

    class Counting:
        async def decode_clip(self, data: bytes, max_seconds: float) -> DecodedAudio:
            decoded.append(len(data))
            audio: DecodedAudio = await clips.decode_clip(data, max_seconds)
            return audio

    app.state.runtime.clips = Counting()
    async with running(app) as client:
        response = await client.post(
            URL,
            files={"file": ("a.wav", tone_bytes(tmp_path, 4.0))},
            data={"diarize": "true", "response_format": "diarized_json", **known(tmp_path, Ann=2)},
        )
    assert response.status_code == 200, response.text
    assert len(decoded) == 1
