"""Helpers for live-session tests: an app served by uvicorn in a thread, a WebSocket client with
deadlines, and recordings cut into base64 PCM16 appends."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from faster_whisper.audio import decode_audio
from websockets.asyncio.client import ClientConnection, connect

from tests.server import free_port

DEADLINE = 60.0


@contextmanager
def serve_in_thread(app: Any, **config: Any) -> Iterator[str]:
    """Serve `app` with uvicorn (real WebSocket transport) on a free port; yields its ws URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}/v1/realtime?intent=transcription"
    finally:
        server.should_exit = True
        thread.join(DEADLINE)


def open_session(
    url: str, key: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any
) -> Any:
    """`websockets.connect` with the key as a bearer header (or `headers` as given)."""
    if headers is None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
    return connect(url, additional_headers=headers, max_size=None, **kwargs)


async def next_event(
    ws: ClientConnection, *types: str, deadline: float = DEADLINE
) -> dict[str, Any]:
    """The next event of one of `types` (others are skipped), within `deadline` seconds."""
    async with asyncio.timeout(deadline):
        while True:
            event = json.loads(await ws.recv())
            if not types or event["type"] in types:
                return dict(event)


async def send(ws: ClientConnection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))


def pcm16(path: Path, rate: int = 24_000) -> bytes:
    """A recording as PCM16 little-endian mono at `rate`."""
    samples = decode_audio(str(path), sampling_rate=rate)
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def silence(seconds: float, rate: int = 24_000) -> bytes:
    return bytes(2 * int(seconds * rate))


def appends(pcm: bytes, rate: int = 24_000, chunk_ms: int = 100) -> Iterator[dict[str, Any]]:
    """`input_audio_buffer.append` events of `chunk_ms` each."""
    step = 2 * rate * chunk_ms // 1000
    for i in range(0, len(pcm), step):
        audio = base64.b64encode(pcm[i : i + step]).decode()
        yield {"type": "input_audio_buffer.append", "audio": audio}
