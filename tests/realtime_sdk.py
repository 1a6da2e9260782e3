"""Streams a recording into a live session with the official `openai` SDK's realtime client,
timing each turn's events on the stream's clock (used by the integration tests and the bench)."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from tests.realtime_client import pcm16, silence

RATE = 24_000
CHUNK_MS = 100


@dataclass
class Turn:
    """One item's events; times are seconds of stream time (audio sent so far at that moment)."""

    item_id: str
    start_ms: int | None = None
    end_ms: int | None = None
    first_delta_at: float | None = None
    completed_at: float | None = None
    deltas: list[str] = field(default_factory=list)
    transcript: str | None = None
    speaker: str | None = None  # the `speaker` extension on `completed` (diarize on)


@dataclass
class Streamed:
    turns: dict[str, Turn] = field(default_factory=dict)
    errors: list[Any] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    speaking: asyncio.Event = field(default_factory=asyncio.Event)

    def text(self) -> str:
        done = [t for t in self.turns.values() if t.transcript is not None]
        return " ".join(t.transcript or "" for t in sorted(done, key=lambda t: t.start_ms or 0))


async def stream_file(
    base_url: str,
    key: str,
    path: Path,
    *,
    speed: float = 1.0,
    language: str | None = "en",
    trailing_silence: float = 1.5,
    deadline: float = 300.0,
    speaking: asyncio.Event | None = None,
    transcription: dict[str, Any] | None = None,
) -> Streamed:
    """Send `path` as 100 ms appends at `speed` x real time; collect events until every turn
    that started has completed (or `deadline` seconds pass). `speaking` is set at the first
    speech_started; `transcription` adds fields to the session's transcription settings."""
    client = AsyncOpenAI(api_key=key, base_url=f"{base_url}/v1", max_retries=0)
    pcm = pcm16(path, RATE) + silence(trailing_silence, RATE)
    result = Streamed(speaking=speaking or asyncio.Event())
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "transcription": {
                            "model": "whisper-1",
                            "language": language,
                            **(transcription or {}),
                        },
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    }
                },
            }
        )
        clock = _Clock(speed)
        sender = asyncio.create_task(_send(conn, pcm, clock))
        receiver = asyncio.create_task(_receive(conn, result, clock))
        try:
            async with asyncio.timeout(deadline):
                await sender
                # All audio sent: wait until every turn that started has its transcript (or
                # the server closed the session).
                while not receiver.done() and not _all_completed(result):
                    await asyncio.wait({receiver}, timeout=0.05)
        finally:
            sender.cancel()
            receiver.cancel()
    return result


def _all_completed(result: Streamed) -> bool:
    return bool(result.turns) and all(t.transcript is not None for t in result.turns.values())


class _Clock:
    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.t0 = time.monotonic()

    def now(self) -> float:
        """Stream seconds: how much audio a real-time sender would have sent by now."""
        return (time.monotonic() - self.t0) * self.speed


async def _send(conn: Any, pcm: bytes, clock: _Clock) -> None:
    step = 2 * RATE * CHUNK_MS // 1000
    clock.t0 = time.monotonic()
    for n, i in enumerate(range(0, len(pcm), step)):
        wait = clock.t0 + n * CHUNK_MS / 1000 / clock.speed - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + step]).decode())


async def _receive(conn: Any, result: Streamed, clock: _Clock) -> None:
    async for event in conn:
        result.types.append(event.type)
        now = clock.now()
        item = getattr(event, "item_id", None)
        turn = result.turns.setdefault(item, Turn(item)) if item else None
        if event.type == "error":
            result.errors.append(event.error)
        elif turn is None:
            pass
        elif event.type == "input_audio_buffer.speech_started":
            turn.start_ms = event.audio_start_ms
            result.speaking.set()
        elif event.type == "input_audio_buffer.speech_stopped":
            turn.end_ms = event.audio_end_ms
        elif event.type == "conversation.item.input_audio_transcription.delta":
            turn.deltas.append(event.delta or "")
            if turn.first_delta_at is None:
                turn.first_delta_at = now
        elif event.type == "conversation.item.input_audio_transcription.completed":
            turn.transcript = event.transcript
            turn.completed_at = now
            turn.speaker = (event.model_extra or {}).get("speaker")
