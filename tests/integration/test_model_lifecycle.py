"""Model lifecycle on a real server: idle TTL unloads and reloads, in-use unload is refused,
memory goes back after unload."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.audio import DATA
from tests.server import ServerProcess, serving

pytestmark = pytest.mark.slow

KEY = "sk-models"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def env(root: Path, **extra: str) -> dict[str, str]:
    return {
        "ADMIN_API_KEY": KEY,  # loads and unloads models
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        **extra,
    }


def transcribe(server: ServerProcess, name: str = "good_short.mp3") -> httpx.Response:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers=HEADERS,
        files={"file": (name, (DATA / name).read_bytes())},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    return response


def models(server: ServerProcess) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{server.base_url}/models/list", headers=HEADERS).json()
    return body


def rss_mb(server: ServerProcess) -> float:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_idle_ttl_unloads_and_the_next_request_reloads(tmp_path: Path) -> None:
    with serving(env(tmp_path, WHISPER__MODEL_TTL_SECONDS="1"), tmp_path / "log") as server:
        transcribe(server)
        deadline = time.monotonic() + 15
        while models(server)["models"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert models(server)["models"] == []
        transcribe(server)
        after = models(server)
    assert after["loads"] == {"base": 2, "tiny.en": 0}


def test_unload_in_use_is_refused_and_memory_returns(tmp_path: Path) -> None:
    with serving(env(tmp_path), tmp_path / "log") as server:
        before = rss_mb(server)
        loaded = httpx.post(
            f"{server.base_url}/models/load",
            headers=HEADERS,
            data={"model": "base"},
            timeout=300,  # the first load reassembles the bundled model: slow on a busy machine
        )
        assert loaded.json() == {"status": "success", "model": "base"}
        peak = rss_mb(server)
        busy = threading.Thread(target=transcribe, args=(server, "en_recorded.flac"))
        busy.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = httpx.get(f"{server.base_url}/status", headers=HEADERS).json()
            if status["queue_state"]["processing_jobs"] == 1:
                break
            time.sleep(0.05)
        refused = httpx.post(
            f"{server.base_url}/models/unload", headers=HEADERS, data={"model": "base"}
        )
        busy.join()
        unloaded = httpx.post(
            f"{server.base_url}/models/unload", headers=HEADERS, data={"model": "base"}
        )
        after = rss_mb(server)
    print(f"RSS before load {before:.0f} MB, loaded {peak:.0f} MB, after unload {after:.0f} MB")
    assert refused.status_code == 409
    assert refused.json()["error"]["type"] == "conflict_error"
    assert unloaded.json() == {"status": "success", "model": "base"}
    assert peak - before > 50, "loading the model should have cost memory"
    assert after - before < 100
