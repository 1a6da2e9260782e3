"""Saved voices through the HTTP API on fake backends: `/v1/speakers` per key, enrolment from
a clip or a finished job's speaker, and `known_speaker_ids[]` naming speakers.

The fake diarizer embeds a clip of n whole seconds as SPEAKER_(n-2)'s voice (see tests/fakes.py);
the real speaker model is tested in tests/integration/test_saved_voices.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from base64 import b64encode
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeDiarizer, FakeTranscriber
from tests.url_server import Routes, serving
from whisperx_api.config import Settings
from whisperx_api.domain.job import JobSpec
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.speakers import KnownVoice
from whisperx_api.jobs.messages import dump_spec, load_spec

pytestmark = pytest.mark.anyio

ALICE = {"Authorization": "Bearer sk-alice"}
BOB = {"Authorization": "Bearer sk-bob"}
URL = "/v1/audio/transcriptions"


@asynccontextmanager
async def two_keys(
    make_settings: Callable[..., Settings], tmp_path: Path, **groups: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeDiarizer]]:
    keys = tmp_path / "keys.json"
    keys.write_text('{"sk-alice": "alice", "sk-bob": "bob"}')
    diarizer = FakeDiarizer()
    app = fake_app(make_settings(api_keys_file=keys, **groups), FakeTranscriber(), diarizer)
    async with running(app) as client:
        yield client, diarizer


async def enrol(
    client: httpx.AsyncClient, tmp_path: Path, name: str, seconds: float, key: dict[str, str]
) -> httpx.Response:
    clip = tone_bytes(tmp_path, seconds, f"{name}-{seconds}.wav")
    return await client.post(
        "/v1/speakers", data={"name": name}, files={"file": ("v.wav", clip)}, headers=key
    )


async def transcribe(
    client: httpx.AsyncClient, tmp_path: Path, key: dict[str, str], **data: Any
) -> httpx.Response:
    audio = tone_bytes(tmp_path, 4.0, "call.wav")
    return await client.post(URL, files={"file": ("a.wav", audio)}, data=data, headers=key)


async def test_enrol_list_get_delete(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, diarizer):
        before = int(time.time())
        created = await enrol(client, tmp_path, "Ann Lee", 2.0, ALICE)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["id"].startswith("spk_")
        assert body["object"] == "speaker"
        assert body["name"] == "Ann Lee"
        assert body["seconds"] == pytest.approx(2.0, abs=0.05)
        assert before <= body["created_at"] <= int(time.time())
        assert "embedding" not in body
        assert [round(c.duration) for c in diarizer.voice_clips] == [2]
        listed = (await client.get("/v1/speakers", headers=ALICE)).json()
        assert listed == {"object": "list", "data": [body]}
        one = await client.get(f"/v1/speakers/{body['id']}", headers=ALICE)
        assert one.json() == body
        gone = await client.delete(f"/v1/speakers/{body['id']}", headers=ALICE)
        assert gone.json() == {"id": body["id"], "object": "speaker", "deleted": True}
        again = await client.get(f"/v1/speakers/{body['id']}", headers=ALICE)
        assert again.status_code == 404
        assert again.json()["error"]["type"] == "not_found_error"
        assert (await client.get("/v1/speakers", headers=ALICE)).json()["data"] == []


async def test_embedded_mode_stores_the_embedding_never_the_audio(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The voice's row holds its name, length and embedding, a few hundred bytes where the
    2-second clip is 64 kB, and enrolment leaves no file but the database behind."""
    data_dir = tmp_path / "data"
    async with two_keys(make_settings, tmp_path) as (client, _):
        files_before = {p.name for p in data_dir.rglob("*") if p.is_file()}
        clip = tone_bytes(tmp_path, 2.0, "clip.wav")
        created = await client.post(
            "/v1/speakers", data={"name": "Ann"}, files={"file": ("v.wav", clip)}, headers=ALICE
        )
        assert created.status_code == 201, created.text
        files_after = {p.name for p in data_dir.rglob("*") if p.is_file()}
    assert {
        name for name in files_after - files_before if not name.startswith("jobs.sqlite3")
    } == set()
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        rows = db.execute("SELECT id, body FROM voices").fetchall()
    assert [voice_id for voice_id, _ in rows] == [created.json()["id"]]
    body = rows[0][1]
    assert len(clip) > 60_000
    assert len(body) < 16_000
    stored = json.loads(body)
    assert set(stored) == {"v", "id", "owner", "name", "created_at", "seconds", "embedding"}
    assert all(isinstance(x, float) for x in stored["embedding"])


async def test_another_keys_voice_is_404_and_unusable(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, _):
        voice_id = (await enrol(client, tmp_path, "Ann", 2.0, ALICE)).json()["id"]
        assert (await client.get(f"/v1/speakers/{voice_id}", headers=BOB)).status_code == 404
        assert (await client.delete(f"/v1/speakers/{voice_id}", headers=BOB)).status_code == 404
        assert (await client.get("/v1/speakers", headers=BOB)).json()["data"] == []
        used = await transcribe(
            client, tmp_path, BOB, diarize="true", **{"known_speaker_ids[]": voice_id}
        )
        assert used.status_code == 400, used.text
        assert used.json()["error"]["param"] == "known_speaker_ids"
        assert (await client.get(f"/v1/speakers/{voice_id}", headers=ALICE)).status_code == 200


async def test_a_key_deletes_all_of_its_voices_and_no_others(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, _):
        ann = (await enrol(client, tmp_path, "Ann", 2.0, ALICE)).json()["id"]
        cy = (await enrol(client, tmp_path, "Cy", 3.0, ALICE)).json()["id"]
        bobs = (await enrol(client, tmp_path, "Bo", 2.0, BOB)).json()
        gone = await client.delete("/v1/speakers", headers=ALICE)
        assert gone.status_code == 200, gone.text
        assert gone.json()["object"] == "list"
        assert sorted(gone.json()["data"], key=lambda d: d["id"]) == sorted(
            ({"id": i, "object": "speaker", "deleted": True} for i in (ann, cy)),
            key=lambda d: d["id"],
        )
        assert (await client.get("/v1/speakers", headers=ALICE)).json()["data"] == []
        assert (await client.get(f"/v1/speakers/{ann}", headers=ALICE)).status_code == 404
        used = await transcribe(
            client, tmp_path, ALICE, diarize="true", **{"known_speaker_ids[]": cy}
        )
        assert used.status_code == 400, used.text
        assert used.json()["error"]["param"] == "known_speaker_ids"
        assert (await client.get("/v1/speakers", headers=BOB)).json()["data"] == [bobs]
        again = await client.delete("/v1/speakers", headers=ALICE)
        assert again.json() == {"object": "list", "data": []}


async def test_saved_voices_name_speakers_alone_and_beside_references(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, diarizer):
        bob = (await enrol(client, tmp_path, "Bob", 3.0, ALICE)).json()["id"]
        stranger = (await enrol(client, tmp_path, "Zed", 5.0, ALICE)).json()["id"]
        named = await transcribe(
            client,
            tmp_path,
            ALICE,
            diarize="true",
            response_format="diarized_json",
            **{"known_speaker_ids[]": [bob, stranger]},
        )
        assert named.status_code == 200, named.text
        speakers = [s["speaker"] for s in named.json()["segments"]]
        assert speakers == ["SPEAKER_00", "Bob", "SPEAKER_00", "Bob"]
        assert diarizer.requests[-1].want_embeddings
        clips_before = len(diarizer.voice_clips)
        ann_ref = (
            "data:audio/wav;base64," + b64encode(tone_bytes(tmp_path, 2.0, "ann.wav")).decode()
        )
        both = await transcribe(
            client,
            tmp_path,
            ALICE,
            diarize="true",
            response_format="diarized_json",
            **{
                "known_speaker_ids[]": bob,
                "known_speaker_names[]": "Ann",
                "known_speaker_references[]": ann_ref,
            },
        )
        assert both.status_code == 200, both.text
        assert [s["speaker"] for s in both.json()["segments"]] == ["Ann", "Bob", "Ann", "Bob"]
        assert len(diarizer.voice_clips) == clips_before + 1  # the saved voice is not re-embedded


async def test_a_voice_enrolled_from_a_finished_job(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, _):
        job = await transcribe(
            client,
            tmp_path,
            ALICE,
            diarize="true",
            speaker_embeddings="true",
            response_format="verbose_json",
            **{"async": "true"},
        )
        assert job.status_code == 202, job.text
        job_id = job.json()["job_id"]
        await wait_completed(client, job_id)
        theirs = await client.post(
            "/v1/speakers",
            data={"name": "Eve", "job_id": job_id, "speaker": "SPEAKER_01"},
            headers=BOB,
        )
        assert theirs.status_code == 404, theirs.text
        missing = await client.post(
            "/v1/speakers",
            data={"name": "Eve", "job_id": job_id, "speaker": "SPEAKER_07"},
            headers=ALICE,
        )
        assert missing.status_code == 400
        assert missing.json()["error"]["param"] == "speaker"
        saved = await client.post(
            "/v1/speakers",
            data={"name": "Eve", "job_id": job_id, "speaker": "SPEAKER_01"},
            headers=ALICE,
        )
        assert saved.status_code == 201, saved.text
        assert 1.0 <= saved.json()["seconds"] <= 2.1  # SPEAKER_01 talks 2 s of the 4
        named = await transcribe(
            client,
            tmp_path,
            ALICE,
            diarize="true",
            response_format="diarized_json",
            **{"known_speaker_ids[]": saved.json()["id"]},
        )
        assert [s["speaker"] for s in named.json()["segments"]] == [
            "SPEAKER_00",
            "Eve",
            "SPEAKER_00",
            "Eve",
        ]


async def wait_completed(client: httpx.AsyncClient, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = (await client.get(f"/transcription/{job_id}", headers=ALICE)).json()
        if status["status"] == "Completed":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not complete")


@pytest.mark.parametrize(
    ("data", "seconds", "param"),
    [
        ({"name": ""}, 2.0, "name"),
        ({"name": "x" * 65}, 2.0, "name"),
        ({"name": "Ann"}, 1.0, "file"),
        ({"name": "Ann"}, 31.0, "file"),
        ({"name": "Ann", "job_id": "abc"}, 2.0, "speaker"),
    ],
)
async def test_bad_enrolments_are_400_and_save_nothing(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    data: dict[str, str],
    seconds: float,
    param: str,
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, _):
        clip = tone_bytes(tmp_path, seconds)
        response = await client.post(
            "/v1/speakers", data=data, files={"file": ("v.wav", clip)}, headers=ALICE
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        assert (await client.get("/v1/speakers", headers=ALICE)).json()["data"] == []


async def test_not_audio_and_no_source_are_400(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, _):
        junk = await client.post(
            "/v1/speakers",
            data={"name": "Ann"},
            files={"file": ("v.wav", b"not audio at all" * 100)},
            headers=ALICE,
        )
        nothing = await client.post("/v1/speakers", data={"name": "Ann"}, headers=ALICE)
    assert junk.status_code == 400
    assert junk.json()["error"]["param"] == "file"
    assert nothing.status_code == 400
    assert nothing.json()["error"]["param"] == "file"


async def test_the_per_key_limit(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    async with two_keys(make_settings, tmp_path, voices={"max_per_key": 1}) as (client, _):
        assert (await enrol(client, tmp_path, "Ann", 2.0, ALICE)).status_code == 201
        over = await enrol(client, tmp_path, "Bob", 3.0, ALICE)
        assert over.status_code == 400
        assert over.json()["error"]["code"] == "too_many_speakers"
        assert (await enrol(client, tmp_path, "Bob", 3.0, BOB)).status_code == 201


async def test_fifty_known_speaker_ids_are_accepted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, _):
        ids = []
        for n in range(50):
            enrolled = await enrol(client, tmp_path, f"Voice {n}", 2.0 + n % 4, ALICE)
            assert enrolled.status_code == 201, enrolled.text
            ids.append(enrolled.json()["id"])
        assert len(set(ids)) == 50
        response = await transcribe(
            client,
            tmp_path,
            ALICE,
            diarize="true",
            response_format="diarized_json",
            **{"known_speaker_ids[]": ids},
        )
        assert response.status_code == 200, response.text
    speakers = {segment["speaker"] for segment in response.json()["segments"]}
    assert len(speakers) == 2  # both diarized speakers are named by saved voices
    assert speakers <= {f"Voice {n}" for n in range(50)}


@pytest.mark.parametrize(
    ("data", "ids"),
    [({"diarize": "false"}, 1), ({"diarize": "true"}, 51)],
)
async def test_known_speaker_ids_need_diarize_and_at_most_50(
    make_settings: Callable[..., Settings], tmp_path: Path, data: dict[str, str], ids: int
) -> None:
    async with two_keys(make_settings, tmp_path) as (client, _):
        voice_id = (await enrol(client, tmp_path, "Ann", 2.0, ALICE)).json()["id"]
        response = await transcribe(
            client, tmp_path, ALICE, **data, **{"known_speaker_ids[]": [voice_id] * ids}
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "known_speaker_ids"


def test_saved_voices_travel_in_the_job_spec() -> None:
    voice = KnownVoice("Ann", (0.5, -0.25))
    spec = JobSpec(options=TranscriptionOptions(model="base", diarize=True, known_voices=(voice,)))
    assert load_spec(dump_spec(spec)).options.known_voices == (voice,)


async def test_enrolment_from_an_audio_url(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    routes = Routes(
        bodies={
            "/bob.wav": (tone_bytes(tmp_path, 3.0, "bob.wav"), "audio/wav"),
            "/page.html": (b"<html><body>not audio</body></html>" * 20, "text/html"),
        }
    )
    with serving(routes) as files:
        async with two_keys(make_settings, tmp_path, fetch={"allow_private_networks": True}) as (
            client,
            diarizer,
        ):
            saved = await client.post(
                "/v1/speakers", data={"name": "Bob", "audio_url": f"{files}/bob.wav"}, headers=ALICE
            )
            page = await client.post(
                "/v1/speakers",
                data={"name": "Bob", "audio_url": f"{files}/page.html"},
                headers=ALICE,
            )
        async with two_keys(make_settings, tmp_path) as (closed, _):
            private = await closed.post(
                "/v1/speakers", data={"name": "Bob", "audio_url": f"{files}/bob.wav"}, headers=ALICE
            )
    assert saved.status_code == 201, saved.text
    assert saved.json()["seconds"] == pytest.approx(3.0, abs=0.05)
    assert [round(c.duration) for c in diarizer.voice_clips] == [3]
    assert page.status_code == 400, page.text
    assert page.json()["error"]["param"] == "audio_url"
    assert private.status_code == 400, private.text
    assert private.json()["error"]["code"] == "url_not_allowed"
    assert routes.hits == ["/bob.wav", "/page.html"]
