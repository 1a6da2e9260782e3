"""HTTP helpers for the job APIs (`/transcription`, async `/v1/audio/transcriptions`), shared by
the end-to-end tests, and the bounded poll they all wait with."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.audio import DATA
from tests.metrics_reader import parse, value
from tests.server import ServerProcess

T = TypeVar("T")


@contextmanager
def api_client(server: ServerProcess, key: str) -> Iterator[httpx.Client]:
    """An HTTP client for `server`, authorized with `key`."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        yield client


def wait_for(check: Callable[[], T | None], what: str, timeout: float, step: float = 0.1) -> T:
    """Call `check` every `step` seconds until it returns something; AssertionError after
    `timeout` (callers in tests get a plain failure, the benchmarks a clear crash)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def submit_job(client: httpx.Client, name: str, content: bytes | None = None, **fields: str) -> str:
    """An async job (202) for fixture `name` (or `content` under that name); its id."""
    files = {"file": (name, content if content is not None else (DATA / name).read_bytes())}
    response = client.post("/transcription", files=files, data=fields)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {"job_id": body["job_id"], "status_url": f"/transcription/{body['job_id']}"}
    return str(body["job_id"])


def submit_openai_job(client: httpx.Client, audio: Path, **fields: str) -> str:
    """An async job (202) through `/v1/audio/transcriptions`, which takes every WhisperX field
    (`batch_size` among them); its id."""
    with audio.open("rb") as f:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": (audio.name, f)},
            data={"async": "true", "response_format": "json", **fields},
        )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def job_status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job's status body (200)."""
    response = client.get(f"/transcription/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def webhook_rounds(client: httpx.Client) -> float:
    """How many rounds this API process's webhook delivery loop has run (from `/metrics`)."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return value(parse(response.text), "whisperx_webhook_rounds_total")


def wait_webhook_rounds(client: httpx.Client, count: int, timeout: float) -> None:
    """Wait until the delivery loop of `client`'s process has run `count` more rounds: each round
    claims whatever is due, so nothing due by the first of them is still unsent after the last."""
    target = webhook_rounds(client) + count
    wait_for(
        lambda: True if webhook_rounds(client) >= target else None,
        f"{count} webhook delivery rounds",
        timeout,
    )
