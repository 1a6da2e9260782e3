"""Abuse cases for auth, key rotation, job isolation and secrets at rest, black-box through the
real app on the fake backends; each asserts the exact answer and what is left on disk."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeDiarizer, FakeTranscriber
from whisperx_api.api.app import create_app
from whisperx_api.config import Settings
from whisperx_api.errors import KeyFileError, TokenUnavailable

pytestmark = pytest.mark.anyio

ALICE, BOB = "sk-alice-0123456789", "sk-bob-0123456789"
HF_TOKEN = "hf_SeCrEt_token_4b1d7e0c9a"
SECRETS_KEY = "a-test-sealing-key-of-at-least-32-characters"
MISSING = "Missing API key: send 'Authorization: Bearer <key>'."
INCORRECT = "Incorrect API key provided."


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def envelope(message: str, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def unauthorized(message: str) -> dict[str, Any]:
    return envelope(message, "authentication_error", "invalid_api_key")


def not_found(job_id: str) -> dict[str, Any]:
    return envelope(f"No job with id '{job_id}'.", "not_found_error", "not_found")


def write_keys(path: Path, keys: dict[str, str]) -> Path:
    path.write_text(json.dumps(keys), encoding="utf-8")
    return path


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return write_keys(tmp_path / "keys.json", {ALICE: "alice", BOB: "bob"})


async def submit(
    client: httpx.AsyncClient, audio: bytes, key: str | None = None, **data: str
) -> str:
    response = await client.post(
        "/transcription",
        files={"file": ("a.wav", audio)},
        data={"sync": "false", **data},
        headers=auth(key) if key else {},
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


async def wait_status(
    client: httpx.AsyncClient, job_id: str, wanted: str, key: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(1200):  # 60 s
        body = (
            await client.get(f"/transcription/{job_id}", headers=auth(key) if key else {})
        ).json()
        if body.get("status") == wanted:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {wanted}: {body}")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- who may call ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, MISSING),
        ({"Authorization": "Bearer sk-nobody"}, INCORRECT),
        ({"Authorization": f"Bearer {ALICE}x"}, INCORRECT),  # a longer key is not a prefix match
        ({"Authorization": f"Basic {ALICE}"}, MISSING),  # only the Bearer scheme
        ({"Authorization": ALICE}, MISSING),  # a bare key is not a scheme
        ({"Authorization": "Bearer "}, MISSING),
        ({"X-Api-Key": ALICE}, MISSING),
    ],
)
async def test_a_request_without_a_valid_bearer_key_is_401(
    make_settings: Callable[..., Settings], keys: Path, headers: dict[str, str], message: str
) -> None:
    app = fake_app(make_settings(api_keys_file=keys), FakeTranscriber())
    async with running(app) as client:
        response = await client.get("/status", headers=headers)
    assert response.status_code == 401
    assert response.json() == unauthorized(message)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_key_in_the_query_string_is_not_accepted(
    make_settings: Callable[..., Settings], keys: Path, tmp_path: Path
) -> None:
    app = fake_app(make_settings(api_keys_file=keys), FakeTranscriber())
    async with running(app) as client:
        for query in ({"api_key": ALICE}, {"key": ALICE}, {"access_token": ALICE}):
            response = await client.get("/status", params=query)
            assert response.status_code == 401, query
            assert response.json() == unauthorized(MISSING)
        upload = await client.post(
            "/transcription",
            params={"api_key": ALICE},
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
        )
        assert upload.status_code == 401
        assert (await client.get("/status", headers=auth(ALICE))).json()["queue_state"] == {
            "queued_jobs": 0,
            "processing_jobs": 0,
        }


async def test_logs_name_the_client_never_its_key(
    make_settings: Callable[..., Settings], keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = fake_app(make_settings(api_keys_file=keys), FakeTranscriber())
    with caplog.at_level(logging.DEBUG):
        async with running(app) as client:
            assert (await client.get("/status", headers=auth(ALICE))).status_code == 200
            assert (await client.get("/status", headers=auth("sk-guess"))).status_code == 401
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "client=alice" in text
    assert ALICE not in text
    assert "sk-guess" not in text


# --- key rotation ----------------------------------------------------------------------------


async def test_a_removed_key_is_revoked_at_once_and_a_new_one_works_at_once(
    make_settings: Callable[..., Settings], keys: Path
) -> None:
    app = fake_app(make_settings(api_keys_file=keys), FakeTranscriber())
    async with running(app) as client:
        assert (await client.get("/status", headers=auth(BOB))).status_code == 200
        write_keys(keys, {ALICE: "alice", "sk-carol-0123456789": "carol"})
        revoked = await client.get("/status", headers=auth(BOB))
        added = await client.get("/status", headers=auth("sk-carol-0123456789"))
        kept = await client.get("/status", headers=auth(ALICE))
    assert revoked.status_code == 401
    assert revoked.json() == unauthorized(INCORRECT)
    assert (added.status_code, kept.status_code) == (200, 200)


@pytest.mark.parametrize("broken", ['{"sk-alice-0123456789": "alice",', "[]", None])
async def test_a_keys_file_that_breaks_keeps_the_last_good_set_and_a_fix_is_picked_up(
    make_settings: Callable[..., Settings],
    keys: Path,
    caplog: pytest.LogCaptureFixture,
    broken: str | None,
) -> None:
    app = fake_app(make_settings(api_keys_file=keys), FakeTranscriber())
    async with running(app) as client:
        if broken is None:
            keys.unlink()  # deleted, as a bad deploy might
        else:
            keys.write_text(broken, encoding="utf-8")
        with caplog.at_level(logging.ERROR, logger="whisperx_api.api.auth"):
            answers = [
                (await client.get("/status", headers=auth(key))).status_code
                for key in (ALICE, BOB, "sk-nobody", ALICE)
            ]
        assert answers == [200, 200, 401, 200]  # never a 500
        [logged] = caplog.records  # once, not per request
        assert "the last good key set stays in force" in logged.getMessage()
        write_keys(keys, {BOB: "bob"})
        fixed = [(await client.get("/status", headers=auth(k))).status_code for k in (ALICE, BOB)]
    assert fixed == [401, 200]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "API_KEYS_FILE: cannot read"), ("{oops", "API_KEYS_FILE: cannot read")],
)
async def test_an_unusable_keys_file_at_startup_is_a_clear_error(
    make_settings: Callable[..., Settings], tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(KeyFileError, match=message):
        create_app(make_settings(api_keys_file=path))


# --- job isolation ---------------------------------------------------------------------------


async def test_another_keys_job_is_404_everywhere_and_stays_untouched(
    make_settings: Callable[..., Settings], keys: Path, tmp_path: Path
) -> None:
    app = fake_app(make_settings(api_keys_file=keys), FakeTranscriber())
    async with running(app) as client:
        job_id = await submit(client, tone_bytes(tmp_path, 1.0), key=ALICE)
        await wait_status(client, job_id, "Completed", key=ALICE)
        answers = [
            await client.request(method, path, headers=auth(BOB))
            for method, path in (
                ("GET", f"/transcription/{job_id}"),
                ("GET", f"/transcription/{job_id}/result"),
                ("DELETE", f"/transcription/{job_id}"),
                ("GET", f"/transcription/{job_id}/result"),
            )
        ]
        unknown = await client.get("/transcription/not-a-job", headers=auth(BOB))
        still = await client.get(f"/transcription/{job_id}", headers=auth(ALICE))
        result = await client.get(f"/transcription/{job_id}/result", headers=auth(ALICE))
    for answer in answers:
        assert answer.status_code == 404
        assert answer.json() == not_found(job_id)
    assert unknown.json() == not_found("not-a-job")  # the same answer: existence is not leaked
    assert still.json()["status"] == "Completed"
    assert result.status_code == 200
    assert result.text == "hello from the fake backend says goodbye\n"


async def test_a_queued_job_cannot_be_cancelled_by_another_key(
    make_settings: Callable[..., Settings], keys: Path, tmp_path: Path
) -> None:
    settings = make_settings(api_keys_file=keys, jobs={"enable_concurrency": False})
    app = fake_app(settings, FakeTranscriber(delay=3.0))  # one job at a time: the second queues
    async with running(app) as client:
        running_id = await submit(client, tone_bytes(tmp_path, 1.0), key=ALICE)
        queued_id = await submit(client, tone_bytes(tmp_path, 1.0), key=ALICE)
        refused = await client.delete(f"/transcription/{queued_id}", headers=auth(BOB))
        status = await client.get(f"/transcription/{queued_id}", headers=auth(ALICE))
        own = await client.delete(f"/transcription/{queued_id}", headers=auth(ALICE))
        await wait_status(client, running_id, "Completed", key=ALICE)
    assert refused.status_code == 404
    assert refused.json() == not_found(queued_id)
    assert status.json()["status"] == "Queued"
    assert own.status_code == 200
    assert own.json() == {"success": True, "message": "Job canceled successfully"}


# --- secrets at rest -------------------------------------------------------------------------


async def test_an_hf_token_never_reaches_the_data_directory(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    diarizer = FakeDiarizer()
    settings = make_settings()
    app = fake_app(settings, FakeTranscriber(delay=1.0), diarizer)
    async with running(app) as client:
        diarized = await submit(
            client, tone_bytes(tmp_path, 2.0), diarize="true", hf_token=HF_TOKEN
        )
        plain = await submit(client, tone_bytes(tmp_path, 2.0), hf_token=HF_TOKEN)
        await wait_status(client, diarized, "Completed")
        await wait_status(client, plain, "Completed")
        on_disk = {path: path.read_bytes() for path in files_under(settings.jobs.data_dir)}
    assert [request.hf_token for request in diarizer.requests] == [HF_TOKEN]  # it was used
    assert on_disk  # the job store was there to search
    for path, content in on_disk.items():
        assert HF_TOKEN.encode() not in content, path
        assert HF_TOKEN[3:].encode() not in content, path


async def test_a_queued_jobs_token_dies_with_the_process_without_a_secrets_key(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(jobs={"shutdown_grace_seconds": 0.2, "enable_concurrency": False})
    queued = await queue_behind_a_running_job(settings, tmp_path)
    assert not any(HF_TOKEN.encode() in p.read_bytes() for p in files_under(settings.jobs.data_dir))

    diarizer = FakeDiarizer()
    async with running(fake_app(settings, FakeTranscriber(), diarizer)) as client:  # restarted
        failed = await wait_status(client, queued, "Failed")
        result = await client.get(f"/transcription/{queued}/result")
    assert failed["attempts"] == 1  # refused at once, not retried
    assert diarizer.requests == []  # never run without the token it asked for
    assert result.status_code == 400
    assert result.json() == envelope(
        TokenUnavailable().message, "invalid_request_error", "hf_token_unavailable", "hf_token"
    )
    assert failed["error"] == TokenUnavailable().message


async def test_with_a_secrets_key_a_queued_jobs_token_survives_a_restart(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(
        jobs={"shutdown_grace_seconds": 0.2, "enable_concurrency": False},
        secrets={"key": SECRETS_KEY},
    )
    queued = await queue_behind_a_running_job(settings, tmp_path)
    assert not any(HF_TOKEN.encode() in p.read_bytes() for p in files_under(settings.jobs.data_dir))

    diarizer = FakeDiarizer()
    async with running(fake_app(settings, FakeTranscriber(), diarizer)) as client:
        await wait_status(client, queued, "Completed")
    assert [request.hf_token for request in diarizer.requests] == [HF_TOKEN]


async def queue_behind_a_running_job(settings: Settings, tmp_path: Path) -> str:
    """Start a server, leave a diarize job with an hf_token queued behind a slow one, stop it
    (`settings` run one job at a time)."""
    async with running(fake_app(settings, FakeTranscriber(delay=30.0))) as client:
        slow = await submit(client, tone_bytes(tmp_path, 1.0))
        await wait_status(client, slow, "Processing")
        queued = await submit(client, tone_bytes(tmp_path, 2.0), diarize="true", hf_token=HF_TOKEN)
        assert (await client.get(f"/transcription/{queued}")).json()["status"] == "Queued"
    return queued


async def test_the_data_directory_and_its_files_are_private(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    data = settings.jobs.data_dir
    data.mkdir()
    os.chmod(data, 0o755)  # noqa: S103 - as an operator might have created it
    async with running(fake_app(settings, FakeTranscriber(delay=5.0))) as client:
        job_id = await submit(client, tone_bytes(tmp_path, 1.0))
        await wait_status(client, job_id, "Processing")
        seen = {p: p.stat().st_mode for p in [data, *data.rglob("*")]}
        await wait_status(client, job_id, "Completed")
    assert data / "jobs" / job_id / "audio" in seen  # the upload was there to check
    assert data / "jobs.sqlite3" in seen
    for path, mode in seen.items():
        wanted = 0o700 if stat.S_ISDIR(mode) else 0o600
        assert stat.S_IMODE(mode) == wanted, (path, oct(mode))
