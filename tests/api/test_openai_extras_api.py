"""`chunking_strategy` and `include[]=logprobs` on the fake backend: parsing, mapping, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.pipeline.stages.faster_whisper import vad_parameters

pytestmark = pytest.mark.anyio

URL = "/v1/audio/transcriptions"


async def post(
    make_settings: Callable[..., Settings], tmp_path: Path, data: dict[str, Any]
) -> tuple[Any, FakeTranscriber]:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    async with running(app) as client:
        response = await client.post(
            URL, files={"file": ("a.wav", tone_bytes(tmp_path, 2.0))}, data=data
        )
    return response, backend


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, (None, None, None)),
        ({"chunking_strategy": "auto"}, (None, None, None)),
        (
            {
                "chunking_strategy": '{"type": "server_vad", "threshold": 0.6, '
                '"prefix_padding_ms": 250, "silence_duration_ms": 700}'
            },
            (0.6, 250, 700),
        ),
        (  # the official SDK's multipart spelling of an object
            {"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "0.3"},
            (0.3, None, None),
        ),
    ],
)
async def test_chunking_strategy_maps_onto_vad_options(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    data: dict[str, str],
    expected: tuple[Any, ...],
) -> None:
    response, backend = await post(make_settings, tmp_path, data)
    assert response.status_code == 200, response.text
    options = backend.calls[0]
    got = (options.vad_threshold, options.vad_prefix_padding_ms, options.vad_silence_duration_ms)
    assert got == expected


@pytest.mark.parametrize(
    "value",
    [
        "manual",
        "{not json",
        '{"type": "semantic_vad"}',
        '{"type": "server_vad", "threshold": 1.5}',
        '{"type": "server_vad", "silence_duration_ms": -1}',
        '{"type": "server_vad", "eagerness": "low"}',
    ],
)
async def test_bad_chunking_strategy_is_400(
    make_settings: Callable[..., Settings], tmp_path: Path, value: str
) -> None:
    response, backend = await post(make_settings, tmp_path, {"chunking_strategy": value})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "chunking_strategy"
    assert backend.calls == []


def test_vad_parameters_keep_the_batched_defaults_for_fields_not_given() -> None:
    assert vad_parameters(TranscriptionOptions(model="base")) is None
    chosen = vad_parameters(TranscriptionOptions(model="base", vad_threshold=0.7))
    assert chosen == {"threshold": 0.7, "min_silence_duration_ms": 160}
    every = vad_parameters(
        TranscriptionOptions(
            model="base", vad_threshold=0.4, vad_prefix_padding_ms=100, vad_silence_duration_ms=900
        )
    )
    assert every == {"threshold": 0.4, "speech_pad_ms": 100, "min_silence_duration_ms": 900}


@pytest.mark.parametrize("field", ["include[]", "include"])
async def test_logprobs_are_added_to_json(
    make_settings: Callable[..., Settings], tmp_path: Path, field: str
) -> None:
    response, backend = await post(make_settings, tmp_path, {field: "logprobs"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "hello from the fake backend says goodbye"
    assert [e["token"] for e in body["logprobs"]] == [f" {w}" for w in body["text"].split()]
    for entry in body["logprobs"]:
        assert entry["logprob"] == pytest.approx(math.log(0.8))
        assert bytes(entry["bytes"]).decode() == entry["token"]
    assert backend.calls[0].word_timestamps  # word probabilities need word timing


async def test_json_without_include_has_no_logprobs(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    response, backend = await post(make_settings, tmp_path, {})
    assert "logprobs" not in response.json()
    assert not backend.calls[0].word_timestamps


@pytest.mark.parametrize(
    "data",
    [
        {"include[]": "logprobs", "response_format": "verbose_json"},
        {"include[]": "logprobs", "stream": "true"},
        {"include[]": "segments"},
    ],
)
async def test_include_refusals(
    make_settings: Callable[..., Settings], tmp_path: Path, data: dict[str, str]
) -> None:
    response, _ = await post(make_settings, tmp_path, data)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "include"
