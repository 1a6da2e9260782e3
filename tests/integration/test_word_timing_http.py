"""Word timing through the HTTP API: verbose_json with word granularity on a fixture whose
every word boundary is known exactly, beside faster-whisper's raw timings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.audio import DATA
from tests.integration.test_word_timing import load_truth, timed, timing_accuracy
from tests.server import serving
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.decode import decode_audio
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

pytestmark = pytest.mark.slow


def raw_accuracy(cache: Path) -> float:
    backend = FasterWhisperBackend(ModelCatalog("base", cache_dir=cache), DeviceConfig("cpu"))
    audio = decode_audio(DATA / "word_timing.flac", max_seconds=600)
    transcript = backend.transcribe(audio, TranscriptionOptions(model="base"), StageContext())
    backend.close()
    return timing_accuracy(load_truth(), timed(transcript))[0]


def test_word_times_through_the_api_meet_the_bar(tmp_path: Path) -> None:
    env = {
        "WHISPER_TMP_FILES": str(tmp_path / "data"),
        "WHISPER__CACHE_DIR": str(tmp_path / "cache"),
        "WHISPER__MODEL": "base",
    }
    with serving(env, tmp_path / "server.log") as server:
        response = httpx.post(
            f"{server.base_url}/v1/audio/transcriptions",
            files={"file": ("word_timing.flac", (DATA / "word_timing.flac").read_bytes())},
            data={"response_format": "verbose_json", "timestamp_granularities[]": "word"},
            timeout=600,
        )
    assert response.status_code == 200, response.text
    words = [(w["word"], w["start"], w["end"]) for w in response.json()["words"]]
    served, matched = timing_accuracy(load_truth(), words)
    raw = raw_accuracy(tmp_path / "cache")
    print(
        f"words within 200 ms (start and end): served {served:.1%} of {matched} matched words, "
        f"faster-whisper raw {raw:.1%}"
    )
    assert matched >= 50
    assert served >= 0.90
