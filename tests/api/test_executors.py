"""Running jobs never starve the API: with every job slot busy and asyncio's default thread
pool full, status and submit calls still answer, because pipeline work and store calls run on
pools of their own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.pipeline.stage import StageContext

pytestmark = pytest.mark.anyio

SLOTS = 3
ANSWER_WITHIN = 5.0  # the goal is well under a second; the margin is for a loaded machine


class BlockingTranscriber(FakeTranscriber):
    """Holds every job until `release` is set, as a long transcription holds its thread."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def _work(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        assert self.release.wait(120), "never released"
        return super()._work(audio, options, ctx)


async def test_status_and_submit_answer_while_every_slot_runs_and_the_default_pool_is_full(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    default_pool = ThreadPoolExecutor(max_workers=SLOTS + 1)
    loop.set_default_executor(default_pool)
    backend = BlockingTranscriber()
    settings = make_settings(jobs={"enable_concurrency": True, "max_concurrent_jobs": SLOTS})
    app = fake_app(settings, backend)
    blocker_release = threading.Event()
    audio = tone_bytes(tmp_path, 1.0)
    try:
        async with running(app) as client:
            ids = []
            for _ in range(SLOTS):
                response = await client.post("/transcription", files={"file": ("a.wav", audio)})
                assert response.status_code == 202, response.text
                ids.append(response.json()["job_id"])
            deadline = time.monotonic() + 60
            while backend.running < SLOTS:
                assert time.monotonic() < deadline, f"{backend.running} of {SLOTS} jobs started"
                await asyncio.sleep(0.02)
            # Whatever else in the process blocks on the default pool takes its last threads.
            blockers = [
                loop.run_in_executor(None, blocker_release.wait, 120) for _ in range(SLOTS + 1)
            ]

            started = time.monotonic()
            statuses = [
                await asyncio.wait_for(client.get(f"/transcription/{job_id}"), ANSWER_WITHIN)
                for job_id in ids
            ]
            server = await asyncio.wait_for(client.get("/status"), ANSWER_WITHIN)
            submitted = await asyncio.wait_for(
                client.post("/transcription", files={"file": ("a.wav", audio)}), ANSWER_WITHIN
            )
            elapsed = time.monotonic() - started

            backend.release.set()
            blocker_release.set()
            await asyncio.gather(*blockers)
    finally:
        backend.release.set()
        blocker_release.set()
        default_pool.shutdown(wait=False)
    assert [s.json()["status"] for s in statuses] == ["Processing"] * SLOTS
    assert server.json()["queue_state"]["processing_jobs"] == SLOTS
    assert submitted.status_code == 202
    assert elapsed < ANSWER_WITHIN
