"""An operator erases everything stored for one API key: `POST /admin/erase_key` (admin key)
deletes the key's jobs with their audio and results (a running one as soon as it ends) and its
saved voices; other keys' data stays."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeDiarizer, FakeTranscriber
from whisperx_api.config import Settings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.pipeline.stage import StageContext

pytestmark = pytest.mark.anyio

ALICE = {"Authorization": "Bearer sk-alice"}
BOB = {"Authorization": "Bearer sk-bob"}
OPS = {"Authorization": "Bearer sk-ops"}


class GatedTranscriber(FakeTranscriber):
    """Holds each job in Processing until `gate` is open."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def _work(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        assert self.gate.wait(120), "the test never opened the gate"
        return super()._work(audio, options, ctx)


async def submit(client: httpx.AsyncClient, tmp_path: Path, key: dict[str, str]) -> str:
    audio = tone_bytes(tmp_path, 1.0)
    answer = await client.post(
        "/transcription", files={"file": ("a.wav", audio)}, data={"sync": "false"}, headers=key
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


async def wait_status(
    client: httpx.AsyncClient, job_id: str, key: dict[str, str], wanted: int | str
) -> None:
    """Until the job's status is `wanted`, or (an int) its status GET answers that code."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = await client.get(f"/transcription/{job_id}", headers=key)
        if answer.status_code == wanted or (
            answer.status_code == 200 and answer.json()["status"] == wanted
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {wanted}")


async def enrol(client: httpx.AsyncClient, tmp_path: Path, key: dict[str, str]) -> str:
    clip = tone_bytes(tmp_path, 2.0, "voice.wav")
    answer = await client.post(
        "/v1/speakers", data={"name": "V"}, files={"file": ("v.wav", clip)}, headers=key
    )
    assert answer.status_code == 201, answer.text
    voice_id: str = answer.json()["id"]
    return voice_id


async def test_an_admin_erases_one_keys_jobs_and_voices(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps({"sk-alice": "alice", "sk-bob": "bob", "sk-ops": {"name": "ops", "admin": True}})
    )
    settings = make_settings(api_keys_file=keys)
    backend = GatedTranscriber()
    app = fake_app(settings, backend, FakeDiarizer())
    audio_dir = settings.jobs.data_dir / "jobs"
    async with running(app) as client:
        done = await submit(client, tmp_path, ALICE)
        await wait_status(client, done, ALICE, "Completed")
        bobs = await submit(client, tmp_path, BOB)
        await wait_status(client, bobs, BOB, "Completed")
        await enrol(client, tmp_path, ALICE)
        bobs_voice = await enrol(client, tmp_path, BOB)
        backend.gate.clear()
        running_job = await submit(client, tmp_path, ALICE)
        await wait_status(client, running_job, ALICE, "Processing")

        refused = await client.post("/admin/erase_key", data={"api_key": "sk-alice"}, headers=BOB)
        erased = await client.post("/admin/erase_key", data={"api_key": "sk-alice"}, headers=OPS)

        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "admin_key_required"
        assert erased.status_code == 200, erased.text
        assert erased.json() == {
            "object": "key.erased",
            "jobs_deleted": 1,
            "jobs_processing": 1,
            "speakers_deleted": 1,
        }
        assert (await client.get(f"/transcription/{done}", headers=ALICE)).status_code == 404
        assert not (audio_dir / done).exists()
        assert (await client.get("/v1/speakers", headers=ALICE)).json()["data"] == []
        backend.gate.set()  # the running job ends, and goes
        await wait_status(client, running_job, ALICE, 404)
        assert not (audio_dir / running_job).exists()
        kept = await client.get(f"/transcription/{bobs}/result", headers=BOB)
        assert kept.status_code == 200
        bobs_voices = (await client.get("/v1/speakers", headers=BOB)).json()["data"]
        assert [v["id"] for v in bobs_voices] == [bobs_voice]


async def test_erasing_a_key_needs_authentication_on(
    make_settings: Callable[..., Settings],
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        answer = await client.post("/admin/erase_key", data={"api_key": "sk-alice"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "api_key"
