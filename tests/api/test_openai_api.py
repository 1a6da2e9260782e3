"""OpenAI endpoints on the fake backend: formats, async, models, keys, cleanup."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

URL = "/v1/audio/transcriptions"


@pytest.mark.parametrize(
    ("fmt", "media"),
    [
        ("json", "application/json"),
        ("text", "text/plain"),
        ("verbose_json", "application/json"),
        ("vtt_json", "application/json"),
        ("srt", "text/plain"),
        ("vtt", "text/vtt"),
        ("aud", "text/plain"),
        ("tsv", "text/plain"),
    ],
)
async def test_every_format_answers_with_its_media_type(
    make_settings: Callable[..., Settings], tmp_path: Path, fmt: str, media: str
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        response = await client.post(
            URL, files={"file": ("a.wav", tone_bytes(tmp_path, 2.0))}, data={"response_format": fmt}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    assert "hello from the fake" in response.text


async def test_word_timestamps_follow_align_and_granularity(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    audio = tone_bytes(tmp_path, 2.0)
    async with running(app) as client:
        plain = await client.post(
            URL, files={"file": ("a.wav", audio)}, data={"response_format": "json"}
        )
        verbose = await client.post(
            URL,
            files={"file": ("a.wav", audio)},
            data={
                "response_format": "verbose_json",
                "timestamp_granularities[]": ["word", "segment"],
            },
        )
        no_align = await client.post(
            URL,
            files={"file": ("a.wav", audio)},
            data={"response_format": "verbose_json", "align": "false"},
        )
    assert plain.json() == {"text": "hello from the fake backend says goodbye"}
    assert [c.word_timestamps for c in backend.calls] == [False, True, False]
    assert len(verbose.json()["words"]) == 7
    assert "words" not in no_align.json()


async def test_translation_asks_for_translate_task(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    async with running(app) as client:
        response = await client.post(
            "/v1/audio/translations", files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))}
        )
    assert response.status_code == 200
    assert backend.calls[0].task.value == "translate"
    assert backend.calls[0].language is None


async def test_options_reach_the_backend(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    async with running(app) as client:
        await client.post(
            URL,
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
            data={
                "model": "tiny.en",
                "language": "EN",
                "prompt": "Glossary: Kubernetes.",
                "temperature": "0.2",
                "hotwords": "Kubernetes,Tansu",
                "suppress_numerals": "true",
                "batch_size": "4",
                "chunk_size": "20",
            },
        )
    options = backend.calls[0]
    assert options.model == "tiny.en"
    assert options.language == "en"
    assert options.prompt == "Glossary: Kubernetes."
    assert options.temperature == pytest.approx(0.2)
    assert options.hotwords == "Kubernetes,Tansu"
    assert options.suppress_numerals
    assert (options.batch_size, options.chunk_size) == (4, 20)


async def test_empty_language_means_auto(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    async with running(app) as client:
        response = await client.post(
            URL, files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))}, data={"language": ""}
        )
    assert response.status_code == 200
    assert backend.calls[0].language is None


async def test_async_returns_a_job_and_the_result_is_fetched_later(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        accepted = await client.post(
            URL,
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
            data={"async": "true", "response_format": "srt"},
        )
        assert accepted.status_code == 202
        job = accepted.json()
        assert job["status_url"] == f"/transcription/{job['job_id']}"
        for _ in range(100):
            status = (await client.get(job["status_url"])).json()["status"]
            if status == "Completed":
                break
            await asyncio.sleep(0.05)
        result = await client.get(f"{job['status_url']}/result")
    assert result.status_code == 200
    assert result.text.startswith("1\n00:00:00,000 --> ")


async def test_no_files_left_after_success_or_failure(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    app = fake_app(settings, FakeTranscriber())
    async with running(app) as client:
        ok = await client.post(URL, files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))})
        poison = await client.post(URL, files={"file": ("b.wav", tone_bytes(tmp_path, 0.2))})
    assert ok.status_code == 200
    assert poison.status_code == 500
    assert poison.json()["error"]["code"] == "max_attempts"
    assert list((settings.jobs.data_dir / "jobs").iterdir()) == []


async def test_models_list_and_lifecycle(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        listing = (await client.get("/v1/models")).json()
        loaded = await client.post("/models/load", data={"model": "tiny.en"})
        after_load = (await client.get("/models/list")).json()
        unloaded = await client.post("/models/unload", data={"model": "tiny.en"})
        again = await client.post("/models/unload", data={"model": "tiny.en"})
        missing = await client.post("/models/load", data={"model": "nope"})
    assert listing["object"] == "list"
    assert {m["id"] for m in listing["data"]} == {"base", "tiny.en", "whisper-1"}
    assert all(m["object"] == "model" and isinstance(m["created"], int) for m in listing["data"])
    assert loaded.json() == {"status": "success", "model": "tiny.en"}
    assert after_load["models"] == ["tiny.en"]
    assert unloaded.json() == {"status": "success", "model": "tiny.en"}
    assert again.status_code == 404
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "model_not_found"


async def test_keys_file_is_reloaded_when_it_changes(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"sk-alice": "alice"}))
    app = fake_app(make_settings(api_keys_file=keys), FakeTranscriber())
    async with running(app) as client:
        alice = await client.get("/v1/models", headers={"Authorization": "Bearer sk-alice"})
        bob_before = await client.get("/v1/models", headers={"Authorization": "Bearer sk-bob"})
        keys.write_text(json.dumps({"sk-bob": "bob"}))
        stat = keys.stat()
        os.utime(keys, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        bob_after = await client.get("/v1/models", headers={"Authorization": "Bearer sk-bob"})
        alice_after = await client.get("/v1/models", headers={"Authorization": "Bearer sk-alice"})
        keys.write_text("{not json")
        os.utime(keys, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
        broken = await client.get("/v1/models", headers={"Authorization": "Bearer sk-bob"})
    assert (alice.status_code, bob_before.status_code) == (200, 401)
    assert (bob_after.status_code, alice_after.status_code) == (200, 401)
    assert broken.status_code == 200  # a broken file keeps the last good key set in force


async def test_health_is_open(make_settings: Callable[..., Settings]) -> None:
    app = fake_app(make_settings(api_key="sk-x"), FakeTranscriber())
    async with running(app) as client:
        for path in ("/health", "/healthcheck"):
            response = await client.get(path)
            assert response.json() == {"status": "healthy"}
