"""Malformed audio and container tricks through the HTTP API, sync and async.

Every case asserts the exact answer, and that nothing was left behind: no job in the store, no
job directory, no temporary file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tests.audio import tone_bytes
from tests.audio_tricks import (
    FLAC_FIXTURE,
    concat_script,
    flac_declaring,
    hls_playlist,
    wav_declaring,
    wav_with_rate,
)
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from tests.url_server import Routes, serving
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

ASYNC = "/transcription"
SYNC = "/v1/audio/transcriptions"
ENDPOINTS = [ASYNC, SYNC]


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files of this test land here, so a leftover one is seen."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        limits={"max_audio_seconds": 3600.0},
        fetch={"allow_private_networks": True},
    )


async def post(client: httpx.AsyncClient, endpoint: str, body: bytes, name: str) -> httpx.Response:
    data = {"sync": "false"} if endpoint == ASYNC else {}
    return await client.post(endpoint, files={"file": (name, body)}, data=data)


def assert_refused(response: httpx.Response, code: str, param: str = "file") -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        code,
        param,
    ), error


def assert_nothing_left(settings: Settings, spool: Path) -> None:
    data_dir = settings.jobs.data_dir
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)
    jobs = data_dir / "jobs"
    assert not jobs.exists() or list(jobs.iterdir()) == []
    assert list(spool.iterdir()) == []


async def refused(
    settings: Settings, spool: Path, endpoint: str, body: bytes, name: str
) -> httpx.Response:
    async with running(fake_app(settings, FakeTranscriber())) as client:
        response = await post(client, endpoint, body, name)
    assert_nothing_left(settings, spool)
    return response


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_small_flac_declaring_five_hours(
    settings: Settings, spool_dir: Path, tmp_path: Path, endpoint: str
) -> None:
    bomb = flac_declaring(tmp_path / "bomb.flac", 5 * 3600).read_bytes()
    assert len(bomb) < 500_000
    response = await refused(settings, spool_dir, endpoint, bomb, "bomb.flac")
    assert_refused(response, "audio_too_long")
    assert "18000 seconds" in response.json()["error"]["message"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_wav_header_claiming_a_huge_data_chunk(
    settings: Settings, spool_dir: Path, tmp_path: Path, endpoint: str
) -> None:
    body = wav_declaring(tmp_path / "huge.wav", 0x7FFF_FFF0).read_bytes()
    assert_refused(await refused(settings, spool_dir, endpoint, body, "a.wav"), "audio_too_long")


async def test_wav_header_claiming_more_than_the_file_holds(
    settings: Settings, spool_dir: Path, tmp_path: Path
) -> None:
    body = wav_declaring(tmp_path / "cut.wav", 60 * 32_000).read_bytes()
    response = await refused(settings, spool_dir, SYNC, body, "a.wav")
    assert_refused(response, "invalid_audio")
    assert "truncated" in response.json()["error"]["message"]


@pytest.mark.parametrize("rate", [1, 4_000_000_000])
async def test_absurd_sample_rate(
    settings: Settings, spool_dir: Path, tmp_path: Path, rate: int
) -> None:
    body = wav_with_rate(tmp_path / "rate.wav", rate).read_bytes()
    assert_refused(await refused(settings, spool_dir, ASYNC, body, "a.wav"), "invalid_audio")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_concat_script_naming_another_file(
    settings: Settings, spool_dir: Path, tmp_path: Path, endpoint: str
) -> None:
    body = concat_script(FLAC_FIXTURE)
    response = await refused(settings, spool_dir, endpoint, body, "list.wav")
    assert_refused(response, "invalid_audio")


async def test_hls_playlist_naming_a_local_file(
    settings: Settings, spool_dir: Path, tmp_path: Path
) -> None:
    body = hls_playlist(str(FLAC_FIXTURE))
    assert_refused(await refused(settings, spool_dir, ASYNC, body, "list.m3u8"), "invalid_audio")


async def test_a_file_with_no_audio_stream(
    settings: Settings, spool_dir: Path, tmp_path: Path
) -> None:
    video = tmp_path / "video.mkv"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("ffv1", rate=1)
        stream.width, stream.height = 16, 16
        for packet in (*stream.encode(av.VideoFrame(16, 16, "yuv420p")), *stream.encode(None)):
            out.mux(packet)
    response = await refused(settings, spool_dir, SYNC, video.read_bytes(), "a.mkv")
    assert_refused(response, "invalid_audio")
    assert "no audio stream" in response.json()["error"]["message"]


async def test_random_bytes_named_mp3(settings: Settings, spool_dir: Path) -> None:
    body = bytes((i * 7919 + 13) % 256 for i in range(50_000))
    assert_refused(await refused(settings, spool_dir, ASYNC, body, "a.mp3"), "invalid_audio")


async def test_flac_header_followed_by_zeros(settings: Settings, spool_dir: Path) -> None:
    real = FLAC_FIXTURE.read_bytes()
    body = real[:200] + bytes(len(real) - 200)
    assert_refused(await refused(settings, spool_dir, SYNC, body, "a.flac"), "invalid_audio")


@pytest.fixture
def tricks(tmp_path: Path) -> Iterator[str]:
    routes = Routes(
        bodies={
            "/bomb.flac": (
                flac_declaring(tmp_path / "b.flac", 5 * 3600).read_bytes(),
                "audio/flac",
            ),
            "/list.wav": (concat_script(FLAC_FIXTURE), "audio/wav"),
        }
    )
    with serving(routes) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "code"), [("/bomb.flac", "audio_too_long"), ("/list.wav", "invalid_audio")]
)
async def test_audio_url_downloads_get_the_same_checks(
    settings: Settings, spool_dir: Path, tricks: str, path: str, code: str
) -> None:
    async with running(fake_app(settings, FakeTranscriber())) as client:
        response = await client.post(ASYNC, data={"audio_url": tricks + path, "sync": "false"})
    assert_refused(response, code, "audio_url")
    assert_nothing_left(settings, spool_dir)


async def test_audio_longer_than_declared_fails_the_job_at_the_limit(
    make_settings: Callable[..., Settings], spool_dir: Path, tmp_path: Path
) -> None:
    """A header may understate; the decoder still stops at the limit, and the job records it."""
    settings = make_settings(limits={"max_audio_seconds": 10.0})
    body = flac_declaring(tmp_path / "low.flac", 2.0).read_bytes()  # 20 s of audio inside
    async with running(fake_app(settings, FakeTranscriber())) as client:
        accepted = await post(client, ASYNC, body, "low.flac")
        assert accepted.status_code == 202, accepted.text
        job = await _finished(client, accepted.json()["job_id"])
    assert job["status"] == "Failed"
    assert job["error"] == "The audio is longer than the maximum of 10 seconds."
    assert list((settings.jobs.data_dir / "jobs").iterdir()) == []
    assert list(spool_dir.iterdir()) == []


async def test_the_server_still_transcribes_after_every_trick(
    settings: Settings, spool_dir: Path, tmp_path: Path
) -> None:
    async with running(fake_app(settings, FakeTranscriber())) as client:
        for body, name in [
            (flac_declaring(tmp_path / "bomb.flac", 5 * 3600).read_bytes(), "bomb.flac"),
            (concat_script(FLAC_FIXTURE), "list.wav"),
        ]:
            assert (await post(client, SYNC, body, name)).status_code == 400
        good = await post(client, SYNC, tone_bytes(tmp_path, 2.0), "tone.wav")
    assert good.status_code == 200, good.text
    assert good.json()["text"]
    assert_nothing_left(settings, spool_dir)


async def _finished(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(1200):
        body: dict[str, Any] = (await client.get(f"/transcription/{job_id}")).json()
        if body["status"] in ("Completed", "Failed", "Cancelled"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never finished: {body}")
