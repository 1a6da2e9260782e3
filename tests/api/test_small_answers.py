"""Small answers a newcomer reads: the 413 states the real file limit, a full queue counts in
good English, `/status` gives numbers as numbers, and a real server logs each request once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from tests.server import serving
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio


async def test_413_states_the_file_limit_not_the_form_allowance(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(limits={"max_file_size": 1000}), FakeTranscriber())
    body = tone_bytes(tmp_path, 10.0)
    async with running(app) as client:
        declared = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", body)})

        async def chunks() -> object:
            yield b"x" * 200_000

        counted = await client.post(
            "/transcription",
            content=chunks(),  # type: ignore[arg-type]
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    for response in (declared, counted):
        assert response.status_code == 413
        message = response.json()["error"]["message"]
        assert re.findall(r"\d+", message) == ["1000"], message


async def test_a_full_queue_says_1_job(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(
        limits={"max_queued_jobs": 1}, jobs={"enable_concurrency": False}
    )  # one runs at a time, so the second waits
    app = fake_app(settings, FakeTranscriber(delay=5.0))
    audio = tone_bytes(tmp_path, 1.0)
    async with running(app) as client:
        answers = []
        for _ in range(3):  # one runs, one waits, the third finds the queue full
            answers.append(
                await client.post(
                    "/transcription", files={"file": ("a.wav", audio)}, data={"sync": "false"}
                )
            )
            if answers[-1].status_code == 503:
                break
        for answer in answers[:-1]:
            if answer.status_code == 202:
                await client.delete(f"/transcription/{answer.json()['job_id']}")
    full = answers[-1]
    assert full.status_code == 503, [a.text for a in answers]
    assert full.json()["error"]["message"] == "1 job is queued; try again later."


async def test_status_gives_port_and_device_index_as_numbers(
    make_settings: Callable[..., Settings],
) -> None:
    async with running(fake_app(make_settings(), FakeTranscriber())) as client:
        body = (await client.get("/status")).json()
    assert body["server"]["port"] == 8000
    assert body["processing"]["device_index"] == 0
    assert json.loads(json.dumps(body))["server"]["port"] == 8000


@pytest.mark.slow
def test_a_real_server_logs_each_request_once(tmp_path: Path) -> None:
    env = {"JOBS__DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "info"}
    with serving(env, tmp_path / "server.log") as server:
        for _ in range(3):
            assert httpx.get(f"{server.base_url}/v1/models", timeout=30).status_code == 200
        # A last request to another path: once its line is written, every line the three
        # requests before it made (a duplicate included) is written too.
        assert httpx.get(f"{server.base_url}/no-such-page", timeout=30).status_code == 404
        deadline = time.monotonic() + 30
        while "/no-such-page" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = server.log()
    assert "/no-such-page" in log
    lines = [line for line in log.splitlines() if "/v1/models" in line]
    assert len(lines) == 3, lines
    assert all("client=" in line for line in lines)
