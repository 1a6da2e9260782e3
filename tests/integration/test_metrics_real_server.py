"""`/metrics` of a real embedded server (`whisperx-api serve`, bundled tiny.en) after real jobs:
outcomes, audio seconds, processing time, realtime factor, model loads and unloads, HTTP routes,
and `METRICS__PUBLIC=true` serving it without a key while the API still needs one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.audio import DATA
from tests.job_client import api_client
from tests.metrics_reader import Samples, delta, parse, total, value
from tests.server import ServerProcess, serving

pytestmark = pytest.mark.slow

KEY = "sk-metrics-real"
AUDIO = "good_short.mp3"  # 7 s of speech


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("metrics")
    env = {
        "ADMIN_API_KEY": KEY,  # the test also unloads a model
        "METRICS__PUBLIC": "true",
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "tiny.en",
    }
    with serving(env, root / "server.log") as running:
        yield running


def scrape(server: ServerProcess) -> Samples:
    response = httpx.get(f"{server.base_url}/metrics", timeout=30)  # no key: public
    assert response.status_code == 200, response.text
    return parse(response.text)


def test_series_move_with_real_jobs(server: ServerProcess) -> None:
    assert httpx.get(f"{server.base_url}/v1/models", timeout=30).status_code == 401
    before = scrape(server)
    with api_client(server, KEY) as client:
        for _ in range(2):
            with (DATA / AUDIO).open("rb") as audio:
                response = client.post(
                    "/v1/audio/transcriptions",
                    files={"file": (AUDIO, audio)},
                    data={"response_format": "verbose_json"},
                    timeout=600,
                )
            assert response.status_code == 200, response.text
        duration = response.json()["duration"]
        loaded = scrape(server)
        unload = client.post("/models/unload", data={"model": "tiny.en"})
        assert unload.status_code == 200, unload.text
    after = scrape(server)

    assert delta(before, after, "whisperx_jobs_submitted_total") == 2
    assert delta(before, after, "whisperx_jobs_total", outcome="completed") == 2
    assert delta(before, after, "whisperx_jobs_total", outcome="failed") == 0
    seconds = delta(before, after, "whisperx_audio_seconds_processed_total")
    assert seconds == pytest.approx(2 * duration, rel=0.01)
    assert delta(before, after, "whisperx_job_processing_seconds_count") == 2
    processing = delta(before, after, "whisperx_job_processing_seconds_sum")
    assert processing > 0
    assert delta(before, after, "whisperx_job_realtime_factor_count") == 2
    rtf = delta(before, after, "whisperx_job_realtime_factor_sum")
    assert rtf == pytest.approx(processing / duration, rel=0.01)
    assert value(after, "whisperx_jobs_running") == 0
    assert value(after, "whisperx_jobs_queued") == 0

    # The model loaded once for both jobs, and the unload request is counted.
    assert total(loaded, "whisperx_model_loads_total", stage="transcription") == 1
    assert total(loaded, "whisperx_model_unloads_total", stage="transcription") == 0
    assert total(after, "whisperx_model_unloads_total", stage="transcription") == 1

    route = {"method": "POST", "route": "/v1/audio/transcriptions", "status": "200"}
    assert delta(before, after, "whisperx_http_requests_total", **route) == 2
    assert value(after, "process_resident_memory_bytes") > 0
