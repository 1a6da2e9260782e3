"""A result goes to one fetch and is deleted only once its body went out: a fetch at the same
moment gets 404, a failed render or a client that drops mid-download leaves it fetchable, a
normal fetch deletes it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from tests.server import free_port
from whisperx_api.api import delivery
from whisperx_api.config import Settings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.job import JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Transcript
from whisperx_api.pipeline.stage import StageContext

BIG_TEXT_BYTES = 24 << 20  # well past the loopback socket buffers of both ends


class BigTranscriber(FakeTranscriber):
    """One segment of `BIG_TEXT_BYTES` of text: a result too large to fit in socket buffers."""

    def _work(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        text = "word " * (BIG_TEXT_BYTES // 5)
        segment = Segment(id=0, start=0.0, end=audio.duration, text=text)
        return Transcript(
            task=options.task, language="en", duration=audio.duration, segments=(segment,)
        )


async def submit(client: httpx.AsyncClient, audio: bytes, **data: str) -> str:
    response = await client.post("/transcription", files={"file": ("a.wav", audio)}, data=data)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


async def wait_completed(client: httpx.AsyncClient, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = (await client.get(f"/transcription/{job_id}")).json()["status"]
        if status == "Completed":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never completed")


async def completed_text_job(client: httpx.AsyncClient, tmp_path: Path) -> str:
    """A job with a `text` result, once it is ready to fetch."""
    job_id = await submit(client, tone_bytes(tmp_path, 1.0), response_format="text")
    await wait_completed(client, job_id)
    return job_id


def failing_once(real: Callable[..., Any]) -> tuple[Callable[..., Any], list[int]]:
    calls: list[int] = []

    def render(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("renderer crashed")
        return real(*args, **kwargs)

    return render, calls


@pytest.mark.anyio
async def test_a_failed_render_leaves_the_result_and_a_normal_fetch_deletes_it(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render, calls = failing_once(delivery.transcript_response)
    monkeypatch.setattr(delivery, "transcript_response", render)
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        job_id = await completed_text_job(client, tmp_path)
        failed = await client.get(f"/transcription/{job_id}/result")
        fetched = await client.get(f"/transcription/{job_id}/result")
        again = await client.get(f"/transcription/{job_id}/result")
    assert failed.status_code == 500
    assert len(calls) == 2
    assert fetched.status_code == 200
    assert fetched.text == "hello from the fake backend says goodbye\n"
    assert again.status_code == 404


@pytest.mark.anyio
async def test_a_fetch_while_another_sends_the_result_gets_404(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    jobs = app.state.runtime.jobs
    real_release = jobs.release_result
    sent, carry_on = asyncio.Event(), asyncio.Event()

    async def release_later(job_id: str) -> None:
        sent.set()  # the first fetch's body went out; its job is not deleted yet
        await carry_on.wait()
        await real_release(job_id)

    jobs.release_result = release_later
    async with running(app) as client:
        job_id = await completed_text_job(client, tmp_path)
        first = asyncio.create_task(client.get(f"/transcription/{job_id}/result"))
        await asyncio.wait_for(sent.wait(), 60)
        second = await client.get(f"/transcription/{job_id}/result")
        carry_on.set()
        delivered = await asyncio.wait_for(first, 60)
        later = await client.get(f"/transcription/{job_id}/result")
    assert delivered.status_code == 200
    assert delivered.text == "hello from the fake backend says goodbye\n"
    assert second.status_code == 404
    assert second.json()["error"]["code"] == "not_found"
    assert later.status_code == 404


@pytest.mark.anyio
async def test_two_fetches_at_once_deliver_the_result_once(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        job_id = await completed_text_job(client, tmp_path)
        answers = await asyncio.gather(
            *(client.get(f"/transcription/{job_id}/result") for _ in range(2))
        )
    assert sorted(a.status_code for a in answers) == [200, 404]


@pytest.mark.anyio
async def test_a_failed_render_of_a_sync_request_keeps_the_result(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render, _ = failing_once(delivery.transcript_response)
    monkeypatch.setattr(delivery, "transcript_response", render)
    app = fake_app(make_settings(), FakeTranscriber())
    store = app.state.runtime.store
    audio = tone_bytes(tmp_path, 1.0)
    async with running(app) as client:
        failed = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", audio)})
        kept = store.counts()[JobStatus.COMPLETED]
        served = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", audio)})
        after = store.counts()[JobStatus.COMPLETED]
    assert failed.status_code == 500
    assert kept == 1  # still there to fetch by id
    assert served.status_code == 200
    assert after == 1  # the served one was deleted, the kept one stays


@contextmanager
def real_server(app: FastAPI) -> Iterator[tuple[str, uvicorn.Server]]:
    """The app behind uvicorn on a loopback port, in a thread: real sockets, real disconnects."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "server exited at startup"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(60)


def drop_after_headers(port: int, path: str) -> bytes:
    """GET `path`, read the status line and headers, then close without reading the body."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuned receive window
    sock.settimeout(60)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1024)
        assert chunk, "connection closed before the headers"
        head += chunk
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # with unread data: a reset, as a client that crashed or gave up
    return head.split(b"\r\n\r\n", 1)[0]


@pytest.mark.slow
def test_a_download_dropped_after_the_headers_can_be_fetched_again(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = fake_app(make_settings(), BigTranscriber())
    audio = tone_bytes(tmp_path, 1.0)
    with real_server(app) as (base_url, server), httpx.Client(base_url=base_url) as client:
        job_id = client.post(
            "/transcription", files={"file": ("a.wav", audio)}, data={"response_format": "text"}
        ).json()["job_id"]
        deadline = time.monotonic() + 60
        while client.get(f"/transcription/{job_id}").json()["status"] != "Completed":
            assert time.monotonic() < deadline, "job never completed"
            time.sleep(0.05)
        client.close()  # only the dropping connection stays open now
        head = drop_after_headers(server.config.port, f"/transcription/{job_id}/result")
        assert head.startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 60
        while server.server_state.tasks:  # the dropped response has run to its end
            assert time.monotonic() < deadline, "the dropped response never ended"
            time.sleep(0.05)
        with httpx.Client(base_url=base_url, timeout=60) as again:
            second = again.get(f"/transcription/{job_id}/result")
            third = again.get(f"/transcription/{job_id}/result")
    assert second.status_code == 200
    assert len(second.content) == BIG_TEXT_BYTES // 5 * 5  # the whole text, trailing space kept
    assert third.status_code == 404
