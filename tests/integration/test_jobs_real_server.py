"""End to end: the job API (§2) and its durability (§6) against real `whisperx-api serve`
processes transcribing real speech with the bundled base model.

Every wait is a bounded poll that fails with what it last saw; nothing sleeps and hopes.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import srt
import webvtt

from tests.audio import DATA
from tests.distributed_stack import build_speech
from tests.job_client import api_client, submit_job, submit_openai_job, wait_for
from tests.job_client import job_status as status
from tests.server import ServerProcess, serving, start_server, stop_server
from tests.wer import normalized_wer

pytestmark = pytest.mark.slow

KEY = "sk-jobs"
LONG = "en_recorded.flac"  # 26 s of real speech: several seconds of work per job
SHORT = "good_short.mp3"  # 7 s: filler jobs whose length does not matter
REFERENCES = {
    LONG: (DATA / "en_recorded.txt").read_text(),
    "en_espeak.flac": (DATA / "en_espeak.txt").read_text(),
    SHORT: "Good morning, and welcome to the weekly team meeting. "
    "Thank you for listening, and have a nice day.",
}
MAX_WER = 0.10
JOB_SECONDS = 120  # generous bound for any one wait on transcription work
POLL = 0.1
WORKER_STARTED = re.compile(r"job ([0-9a-f-]{36}): processing")

T = TypeVar("T")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for every server this session starts here: the model is assembled once
    (per xdist worker; session scope leaves the tests free to spread over workers)."""
    return tmp_path_factory.mktemp("jobs-cache")


@dataclass
class Deployment:
    """One data directory and its settings; servers come and go on it."""

    env: dict[str, str]
    data: Path
    log: Path

    def job_dir(self, job_id: str) -> Path:
        return self.data / "jobs" / job_id


@pytest.fixture
def deploy(tmp_path: Path, cache_dir: Path) -> Callable[..., Deployment]:
    def build(**settings: str) -> Deployment:
        """One job at a time unless a test says otherwise: these tests follow jobs through a
        queue (the default runs several at once, see `test_concurrent_mode_...`)."""
        data = tmp_path / "data"
        env = {
            "WHISPER_TMP_FILES": str(data),
            "WHISPER__CACHE_DIR": str(cache_dir),
            "WHISPER__MODEL": "base",
            "API_KEY": KEY,
            "ENABLE_CONCURRENCY": "false",
            **settings,
        }
        return Deployment(env, data, tmp_path / "server.log")

    return build


def api(server: ServerProcess) -> AbstractContextManager[httpx.Client]:
    return api_client(server, KEY)


def submit(client: httpx.Client, audio: str = LONG, **fields: str) -> str:
    """An async job (202) for a fixture; its id."""
    return submit_job(client, audio, **fields)


def queue_state(client: httpx.Client) -> dict[str, int]:
    response = client.get("/status")
    assert response.status_code == 200, response.text
    state: dict[str, int] = response.json()["queue_state"]
    return state


def poll(check: Callable[[], T | None], what: str, timeout: float = JOB_SECONDS) -> T:
    """`wait_for` with this module's step and default bound."""
    return wait_for(check, what, timeout, POLL)


def wait_status(client: httpx.Client, job_id: str, wanted: str) -> dict[str, Any]:
    seen: list[str] = []

    def check() -> dict[str, Any] | None:
        body = status(client, job_id)
        seen.append(body["status"])
        assert body["status"] in _reachable(wanted), f"{job_id}: {seen}"
        return body if body["status"] == wanted else None

    return poll(check, f"job {job_id} to be {wanted}")


def _reachable(wanted: str) -> set[str]:
    """Statuses a healthy job may show on its way to `wanted`."""
    path = ["Queued", "Processing", "Completed"]
    return set(path[: path.index(wanted) + 1]) if wanted in path else {*path, wanted}


def assert_error_envelope(response: httpx.Response, status_code: int) -> dict[str, Any]:
    assert response.status_code == status_code, response.text
    body: dict[str, Any] = response.json()
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str), body
    assert error["message"], body
    return body


def take_json_text(client: httpx.Client, job_id: str) -> str:
    """Fetch a json-format result, check its shape, and return its text."""
    return json_text(take(client, job_id))


def json_text(body: str) -> str:
    """The text of a job's json result, after checking its shape."""
    parsed = json.loads(body)
    assert set(parsed) == {"text", "language", "segments"}, parsed
    assert parsed["language"] == "en"
    assert parsed["segments"], parsed
    for segment in parsed["segments"]:
        assert {"start", "end", "text"} <= set(segment), segment
        assert 0 <= segment["start"] <= segment["end"], segment
    return str(parsed["text"])


def assert_delivered_once(client: httpx.Client, deployment: Deployment, job_id: str) -> None:
    """The result is gone after one delivery, and so are the job's files."""
    assert_error_envelope(client.get(f"/transcription/{job_id}/result"), 404)
    assert not deployment.job_dir(job_id).exists()


def worker_runs(server: ServerProcess) -> list[str]:
    """Job ids in the order a worker started them, from the server log."""
    return WORKER_STARTED.findall(server.log())


def assert_clean_log(server: ServerProcess) -> None:
    assert "Traceback" not in server.log(), server.log()


# 1. Lifecycle, sequential mode


SUBTITLE_FORMATS = ["srt", "vtt", "txt", "tsv", "json"]


def test_sequential_queue_positions_progress_and_every_format(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy()
    with serving(deployment.env, deployment.log) as server, api(server) as client:
        ids = [submit(client, LONG, response_format=fmt) for fmt in SUBTITLE_FORMATS]
        assert all((deployment.job_dir(i) / "audio").is_file() for i in ids)

        snapshot = stable_snapshot(client, ids)
        started = [s for s in snapshot if s["status"] != "Queued"]
        queued = [s for s in snapshot if s["status"] == "Queued"]
        assert [s["status"] for s in started] in ([], ["Processing"]), snapshot
        assert [s["job_id"] for s in queued] == ids[len(started) :], snapshot
        assert [s["queue_position"] for s in queued] == list(range(1, len(queued) + 1))

        trace = trace_until_completed(client, ids[-1])
        phases = [status for status, _ in groupby(b["status"] for b in trace)]
        assert phases == ["Queued", "Processing", "Completed"], phases
        positions = [b["queue_position"] for b in trace if b["status"] == "Queued"]
        assert positions == sorted(positions, reverse=True), positions
        assert positions[-1] == 1, positions
        progress = [b["progress"] for b in trace if b["status"] == "Processing"]
        assert all(0 <= p <= 1 for p in progress), progress
        assert progress == sorted(progress), progress

        for job_id in ids:
            assert status(client, job_id)["status"] == "Completed"
        bodies = {
            fmt: take(client, job_id) for fmt, job_id in zip(SUBTITLE_FORMATS, ids, strict=True)
        }
        for job_id in ids:
            assert_delivered_once(client, deployment, job_id)
        assert_clean_log(server)

    reference = REFERENCES[LONG]
    assert_srt(bodies["srt"], reference)
    assert_vtt(bodies["vtt"], reference)
    assert normalized_wer(reference, bodies["txt"]) <= MAX_WER, bodies["txt"]
    assert_tsv(bodies["tsv"], reference)
    text = json_text(bodies["json"])
    assert normalized_wer(reference, text) <= MAX_WER, text


def stable_snapshot(client: httpx.Client, ids: list[str]) -> list[dict[str, Any]]:
    """Statuses of `ids` read twice in a row with the same answer (no job moved meanwhile)."""

    def check() -> list[dict[str, Any]] | None:
        first = [status(client, i) for i in ids]
        second = [status(client, i) for i in ids]
        moved = [
            (a["status"], a.get("queue_position")) != (b["status"], b.get("queue_position"))
            for a, b in zip(first, second, strict=True)
        ]
        return None if any(moved) else second

    return poll(check, "two identical status snapshots", timeout=5)


def trace_until_completed(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """The job's status every POLL seconds until it completes."""
    trace: list[dict[str, Any]] = []

    def check() -> list[dict[str, Any]] | None:
        body = status(client, job_id)
        trace.append(body)
        assert body["status"] in {"Queued", "Processing", "Completed"}, trace
        return trace if body["status"] == "Completed" else None

    return poll(check, f"job {job_id} to complete", timeout=3 * JOB_SECONDS)


def take(client: httpx.Client, job_id: str) -> str:
    response = client.get(f"/transcription/{job_id}/result")
    assert response.status_code == 200, response.text
    return response.text


def assert_srt(body: str, reference: str) -> None:
    cues = list(srt.parse(body))
    assert cues, body
    starts = [c.start for c in cues]
    assert starts == sorted(starts)
    assert all(c.start <= c.end for c in cues)
    assert normalized_wer(reference, " ".join(c.content for c in cues)) <= MAX_WER, body


def assert_vtt(body: str, reference: str) -> None:
    assert body.startswith("WEBVTT"), body
    cues = webvtt.from_buffer(io.StringIO(body)).captions
    assert cues, body
    assert normalized_wer(reference, " ".join(c.text for c in cues)) <= MAX_WER, body


def assert_tsv(body: str, reference: str) -> None:
    header, *rows = body.strip("\n").split("\n")
    assert header == "start\tend\ttext"
    assert rows, body
    fields = [row.split("\t") for row in rows]
    assert all(len(f) == 3 and 0 <= int(f[0]) <= int(f[1]) for f in fields), body
    assert normalized_wer(reference, " ".join(f[2] for f in fields)) <= MAX_WER, body


# 2. Concurrent mode


def test_concurrent_mode_runs_at_most_max_jobs_at_once(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(ENABLE_CONCURRENCY="true", MAX_CONCURRENT_JOBS="2")
    audios = ["en_espeak.flac", SHORT] * 3
    with serving(deployment.env, deployment.log) as server, api(server) as client:
        ids = [submit(client, audio, response_format="json") for audio in audios]
        samples: list[dict[str, int]] = []

        def check() -> list[dict[str, int]] | None:
            samples.append(queue_state(client))
            return samples if samples[-1] == {"queued_jobs": 0, "processing_jobs": 0} else None

        deadline = time.monotonic() + 3 * JOB_SECONDS
        while check() is None:
            assert time.monotonic() < deadline, samples[-20:]
            time.sleep(0.05)

        processing = [s["processing_jobs"] for s in samples]
        assert max(processing) == 2, processing
        for audio, job_id in zip(audios, ids, strict=True):
            assert status(client, job_id)["status"] == "Completed"
            text = take_json_text(client, job_id)
            assert normalized_wer(REFERENCES[audio], text) <= MAX_WER, (audio, text)
            assert_delivered_once(client, deployment, job_id)
        assert_clean_log(server)


# 3. Cancel


def test_cancel_queued_job_but_not_a_processing_one(deploy: Callable[..., Deployment]) -> None:
    deployment = deploy()
    with serving(deployment.env, deployment.log) as server, api(server) as client:
        first, second, third = (submit(client, audio) for audio in (LONG, SHORT, SHORT))
        assert status(client, third)["status"] == "Queued"
        assert deployment.job_dir(third).is_dir()

        response = client.delete(f"/transcription/{third}")
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True, "message": "Job canceled successfully"}
        assert status(client, third)["status"] == "Cancelled"
        assert not deployment.job_dir(third).exists()

        wait_status(client, first, "Processing")
        refused = assert_error_envelope(client.delete(f"/transcription/{first}"), 409)
        assert status(client, first)["status"] in {"Processing", "Completed"}, refused

        unknown = client.delete(f"/transcription/{uuid.uuid4()}")
        assert_error_envelope(unknown, 404)

        def second_done() -> bool | None:
            assert status(client, third)["status"] == "Cancelled"
            return True if status(client, second)["status"] == "Completed" else None

        poll(second_done, "the second job to complete")
        assert status(client, third)["status"] == "Cancelled"
        assert_error_envelope(client.get(f"/transcription/{third}/result"), 409)
        assert queue_state(client) == {"queued_jobs": 0, "processing_jobs": 0}
        assert worker_runs(server) == [first, second]
        for job_id in (first, second):
            assert take(client, job_id)
            assert_delivered_once(client, deployment, job_id)
        assert_clean_log(server)


# 4. Restart after SIGKILL


def test_jobs_survive_sigkill_and_the_interrupted_one_is_retried(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy()
    audios = [LONG, SHORT, SHORT, SHORT]
    server = start_server(deployment.env, deployment.log)
    try:
        with api(server) as client:
            ids = [submit(client, audio, response_format="json") for audio in audios]
            wait_status(client, ids[0], "Processing")
        server.process.kill()
        assert server.process.wait(10) == -9
        assert all(deployment.job_dir(i).is_dir() for i in ids)

        server = start_server(deployment.env, deployment.log)
        with api(server) as client:
            finished = [wait_status(client, job_id, "Completed") for job_id in ids]
            assert finished[0]["attempts"] >= 2, finished
            assert all(f["attempts"] == 1 for f in finished[1:]), finished
            for audio, job_id in zip(audios, ids, strict=True):
                text = take_json_text(client, job_id)
                assert normalized_wer(REFERENCES[audio], text) <= MAX_WER, (audio, text)
                assert_delivered_once(client, deployment, job_id)
            assert queue_state(client) == {"queued_jobs": 0, "processing_jobs": 0}
        assert_clean_log(server)
    finally:
        stop_server(server)


# 5. Graceful SIGTERM


def test_sigterm_finishes_the_running_job_and_keeps_the_queue(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy()
    audios = [LONG, SHORT, SHORT]
    server = start_server(deployment.env, deployment.log)
    try:
        with api(server) as client:
            ids = [submit(client, audio, response_format="json") for audio in audios]
            wait_status(client, ids[0], "Processing")
        server.process.terminate()
        try:
            exit_code = server.process.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not exit within 60 s of SIGTERM")
        assert_clean_log(server)

        server = start_server(deployment.env, deployment.log)
        with api(server) as client:
            running = status(client, ids[0])
            assert (running["status"], running["attempts"]) == ("Completed", 1), running
            for audio, job_id in zip(audios, ids, strict=True):
                wait_status(client, job_id, "Completed")
                text = take_json_text(client, job_id)
                assert normalized_wer(REFERENCES[audio], text) <= MAX_WER, (audio, text)
                assert_delivered_once(client, deployment, job_id)
    finally:
        stop_server(server)
    assert exit_code == 0, f"exit code {exit_code} after a graceful SIGTERM"


def test_sigterm_past_the_grace_puts_the_running_job_back(
    deploy: Callable[..., Deployment], tmp_path: Path
) -> None:
    """JOBS__SHUTDOWN_GRACE_SECONDS=0: the running job stops at its next segment, goes back in
    line without costing an attempt, and completes after the restart."""
    deployment = deploy(JOBS__SHUTDOWN_GRACE_SECONDS="0")
    speech = build_speech(tmp_path / "speech.wav", 100)
    server = start_server(deployment.env, deployment.log)
    try:
        with api(server) as client:
            # batch_size=1: one VAD chunk per batch, so the job has segment boundaries to stop at.
            job_id = submit_openai_job(client, speech.path, batch_size="1")
            poll(
                lambda: True if status(client, job_id).get("progress", 0) > 0 else None,
                "the job to make progress",
            )
        server.process.terminate()
        assert server.process.wait(60) == 0
        assert f"job {job_id}: put back (worker stopping)" in server.log(), server.log()

        server = start_server(deployment.env, deployment.log)
        with api(server) as client:
            done = wait_status(client, job_id, "Completed")
            assert done["attempts"] == 1, done  # the interrupted run was not counted
            text = json.loads(take(client, job_id))["text"]  # OpenAI's json: only the text
            assert normalized_wer(speech.reference, text) <= MAX_WER, text
        assert worker_runs(server) == [job_id, job_id]
        assert_clean_log(server)
    finally:
        stop_server(server)


# 6. A client that goes away cancels its queued sync job


def give_up_waiting(client: httpx.Client) -> None:
    """A sync request whose client stops waiting after a second."""
    files = {"file": (SHORT, (DATA / SHORT).read_bytes())}
    with pytest.raises(httpx.TimeoutException):
        client.post(
            "/v1/audio/transcriptions",
            files=files,
            data={"model": "whisper-1"},
            timeout=httpx.Timeout(1.0),
        )


def hang_up_on_the_stream(client: httpx.Client) -> None:
    """A `stream=true` request whose client closes the connection once the stream has begun."""
    files = {"file": (SHORT, (DATA / SHORT).read_bytes())}
    data = {"model": "whisper-1", "stream": "true"}
    with client.stream("POST", "/v1/audio/transcriptions", files=files, data=data) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("walk_away", [give_up_waiting, hang_up_on_the_stream])
def test_disconnected_sync_client_cancels_its_queued_job(
    deploy: Callable[..., Deployment], walk_away: Callable[[httpx.Client], None]
) -> None:
    deployment = deploy()
    with serving(deployment.env, deployment.log) as server, api(server) as client:
        busy = submit(client, LONG)
        wait_status(client, busy, "Processing")
        walk_away(client)

        def queue_drained() -> tuple[dict[str, int], str] | None:
            state = queue_state(client)
            busy_status = status(client, busy)["status"]
            return (state, busy_status) if state["queued_jobs"] == 0 else None

        state, busy_status = poll(queue_drained, "the abandoned job to leave the queue", 10)
        # One worker: an empty queue while `busy` still runs (or an idle worker once it is done)
        # means the abandoned job was cancelled rather than claimed.
        seen = (busy_status, state["processing_jobs"])
        assert seen in {("Processing", 1), ("Completed", 0)}, (
            f"the abandoned sync job was not cancelled; it was run: {seen}, {worker_runs(server)}"
        )

        wait_status(client, busy, "Completed")
        assert queue_state(client) == {"queued_jobs": 0, "processing_jobs": 0}
        assert worker_runs(server) == [busy]
        assert take(client, busy)
        assert_clean_log(server)


def leave_the_sync_request(client: httpx.Client, audio: Path) -> None:
    """A sync request whose client hangs up once its job is processing (a raw socket: the whole
    request is sent, then the connection closes without reading the answer)."""
    request = client.build_request(
        "POST",
        "/v1/audio/transcriptions",
        files={"file": (audio.name, audio.read_bytes())},
        data={"model": "whisper-1"},
    )
    head = f"POST {request.url.raw_path.decode()} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in request.headers.items()
    )
    with socket.create_connection((request.url.host, request.url.port)) as sock:
        sock.sendall(f"{head}\r\n".encode() + request.read())
        poll(
            lambda: True if queue_state(client)["processing_jobs"] == 1 else None,
            "the sync job to start",
        )


def leave_the_stream(client: httpx.Client, audio: Path) -> None:
    """A `stream=true` request whose client hangs up once its job is processing."""
    with (
        audio.open("rb") as f,
        client.stream(
            "POST",
            "/v1/audio/transcriptions",
            files={"file": (audio.name, f)},
            data={"model": "whisper-1", "stream": "true"},
        ) as response,
    ):
        assert response.status_code == 200
        poll(
            lambda: True if queue_state(client)["processing_jobs"] == 1 else None,
            "the streamed job to start",
        )


@pytest.mark.parametrize("walk_away", [leave_the_sync_request, leave_the_stream])
def test_a_result_nobody_can_fetch_is_deleted_when_its_job_ends(
    deploy: Callable[..., Deployment],
    tmp_path: Path,
    walk_away: Callable[[httpx.Client, Path], None],
) -> None:
    """The client of a sync or streamed request left while its job was processing (too late to
    cancel it): the job finishes, and its result is deleted rather than kept until expiry."""
    deployment = deploy()
    speech = build_speech(tmp_path / "speech.wav", 100)
    with serving(deployment.env, deployment.log) as server, api(server) as client:
        walk_away(client, speech.path)
        (job_id,) = worker_runs(server)
        poll(
            lambda: True if client.get(f"/transcription/{job_id}").status_code == 404 else None,
            "the finished job's result to be discarded",
        )
        assert f"job {job_id}: completed" in server.log()
        assert f"job {job_id}: result discarded; its client had gone" in server.log()
        assert not deployment.job_dir(job_id).exists()
        assert_clean_log(server)


# 7. Sync timeout


def test_sync_timeout_answers_504_and_the_job_keeps_running(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(SYNC_REQUEST_TIMEOUT_SECONDS="1")
    with serving(deployment.env, deployment.log) as server, api(server) as client:
        files = {"file": (LONG, (DATA / LONG).read_bytes())}
        began = time.monotonic()
        response = client.post(
            "/transcription", files=files, data={"sync": "true", "response_format": "json"}
        )
        elapsed = time.monotonic() - began
        body = assert_error_envelope(response, 504)
        assert elapsed < 10, elapsed
        job_id = body["job_id"]
        assert uuid.UUID(job_id)

        wait_status(client, job_id, "Completed")
        text = take_json_text(client, job_id)
        assert normalized_wer(REFERENCES[LONG], text) <= MAX_WER, text
        assert_delivered_once(client, deployment, job_id)
        assert_clean_log(server)
