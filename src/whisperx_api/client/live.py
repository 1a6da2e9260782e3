"""`whisperx-api live FILE|-`: live captions from a running server's `/v1/realtime` session.

A file is decoded to PCM16 24 kHz mono and sent at real speed (`--fast`: as fast as the server
takes it); `-` reads raw PCM16 mono from stdin, e.g. a microphone:
`arecord -f S16_LE -r 24000 -c 1 | whisperx-api live -`. Each completed turn is printed as one
line on stdout; on a terminal, the turn being spoken is shown and rewritten as it grows.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import av
import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

CHUNK_MS = 100
RATE = 24_000
END_SILENCE_SECONDS = 0.5  # past the turn-ending silence: the server's VAD ends the last turn
FINISH_SECONDS = 120.0  # longest wait for the last transcripts after the audio ends


def add_live_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], *, server: str, api_key: str | None
) -> None:
    """Register `live` on the top-level parser."""
    live = sub.add_parser(
        "live",
        help="live captions: stream a file or stdin PCM to a server and print the transcript",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    live.add_argument("source", metavar="FILE|-", help="an audio/video file, or - for stdin PCM")
    live.add_argument(
        "--server", default=server, help=f"base URL (default: {server}; env WHISPERX_API_URL)"
    )
    live.add_argument("--api-key", default=api_key, help="bearer token (env WHISPERX_API_KEY)")
    live.add_argument("--language", help="spoken language (ISO-639-1); detected per turn if unset")
    live.add_argument("--model", default="", help="model name (default: the server's)")
    live.add_argument(
        "--rate", type=int, default=RATE, choices=(24_000, 16_000), help="stdin PCM sample rate"
    )
    live.add_argument("--fast", action="store_true", help="send a file as fast as possible")
    live.add_argument(
        "--silence-ms", type=int, default=500, help="silence that ends a turn (default 500)"
    )


def run_live(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Stream, print captions; 0 when every turn was transcribed."""
    captions = Captions(out, err, partials=out.isatty())
    try:
        return asyncio.run(_live(args, captions))
    except KeyboardInterrupt:
        captions.clear_partial()
        return 130


async def _live(args: argparse.Namespace, captions: Captions) -> int:
    rate = RATE if args.source != "-" else args.rate
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    try:
        async with connect(realtime_url(args.server), additional_headers=headers) as ws:
            await _send(ws, session_update(args, rate))
            receiver = asyncio.create_task(_receive(ws, captions))
            await _stream(ws, _chunks(args, rate), paced=args.source != "-" and not args.fast)
            silence = args.silence_ms / 1000 + END_SILENCE_SECONDS
            await _send(ws, _append(bytes(2 * int(silence * rate))))
            # Events are handled in order: the answer to this one means all audio was heard.
            await _send(ws, {"type": "session.update", "session": {"type": "transcription"}})
            async with asyncio.timeout(FINISH_SECONDS):
                await captions.finished.wait()
            receiver.cancel()
    except InvalidStatus as exc:
        captions.fail(_refusal(exc))
    except (OSError, InvalidURI, ConnectionClosed, TimeoutError) as exc:
        captions.fail(f"live session failed: {exc or type(exc).__name__}")
    except av.FFmpegError as exc:
        captions.fail(f"cannot read {args.source}: {exc}")
    return 1 if captions.failed else 0


def realtime_url(server: str) -> str:
    """`http(s)://host[:port]` as the `/v1/realtime` WebSocket URL for transcription."""
    base = server.rstrip("/")
    scheme, _, rest = base.partition("://")
    ws_scheme = {"https": "wss", "http": "ws"}.get(scheme, scheme)
    return f"{ws_scheme}://{rest}/v1/realtime?intent=transcription"


def session_update(args: argparse.Namespace, rate: int) -> dict[str, Any]:
    transcription: dict[str, Any] = {"model": args.model or "whisper-1"}
    if args.language:
        transcription["language"] = args.language
    return {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": rate},
                    "transcription": transcription,
                    "turn_detection": {
                        "type": "server_vad",
                        "silence_duration_ms": args.silence_ms,
                    },
                }
            },
        },
    }


async def _stream(ws: ClientConnection, chunks: AsyncIterator[bytes], *, paced: bool) -> None:
    started = time.monotonic()
    sent_seconds = 0.0
    async for chunk in chunks:
        if paced and (wait := started + sent_seconds - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        await _send(ws, _append(chunk))
        sent_seconds += len(chunk) / 2 / RATE


async def _chunks(args: argparse.Namespace, rate: int) -> AsyncIterator[bytes]:
    size = 2 * rate * CHUNK_MS // 1000
    if args.source == "-":
        while chunk := await asyncio.to_thread(sys.stdin.buffer.read, size):
            yield chunk
        return
    pending = b""
    for pcm in decode_file(Path(args.source)):
        pending += pcm
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
        await asyncio.sleep(0)
    if pending:
        yield pending


def decode_file(path: Path) -> Iterator[bytes]:
    """The file's first audio stream as PCM16 24 kHz mono, frame by frame."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                yield np.ascontiguousarray(out.to_ndarray()).tobytes()
        for out in resampler.resample(None):
            yield np.ascontiguousarray(out.to_ndarray()).tobytes()


def _append(pcm: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


async def _send(ws: ClientConnection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))


async def _receive(ws: ClientConnection, captions: Captions) -> None:
    try:
        async for message in ws:
            captions.on_event(json.loads(message))
    except ConnectionClosed:
        pass
    finally:
        captions.finished.set()


def _refusal(exc: InvalidStatus) -> str:
    try:
        message = json.loads(exc.response.body or b"{}")["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {exc.response.status_code}"
    return f"the server refused the session: {message}"


@dataclass
class Captions:
    """Turns the server's events into printed captions, and knows when the stream is done."""

    out: TextIO
    err: TextIO
    partials: bool
    updates: int = 0  # session.updated answers: the 2nd follows the last audio
    failed: bool = False
    speaking: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    _pending: set[str] = field(default_factory=set)
    _partial: dict[str, str] = field(default_factory=dict)

    def on_event(self, event: dict[str, Any]) -> None:
        kind, item = event.get("type"), event.get("item_id")
        if kind == "session.updated":
            self.updates += 1
        elif kind == "input_audio_buffer.speech_started":
            self.speaking = True
        elif kind == "input_audio_buffer.speech_stopped":
            self.speaking = False
        elif kind == "input_audio_buffer.committed" and item:
            self.speaking = False
            self._pending.add(item)
        elif kind == "conversation.item.input_audio_transcription.delta" and item:
            self._partial[item] = self._partial.get(item, "") + (event.get("delta") or "")
            self._show_partial(self._partial[item])
        elif kind == "conversation.item.input_audio_transcription.completed" and item:
            self._done(item, str(event.get("transcript", "")))
        elif kind == "conversation.item.input_audio_transcription.failed" and item:
            self._done(item, None)
            self._say(f"a turn could not be transcribed: {event['error'].get('message')}")
        elif kind == "error":
            self._say(f"server: {event['error'].get('message')}")
        if self.updates >= 2 and not self._pending and not self.speaking:
            self.finished.set()

    def _done(self, item: str, text: str | None) -> None:
        self._pending.discard(item)
        self._partial.pop(item, None)
        self.clear_partial()
        if text:
            print(text, file=self.out, flush=True)

    def _show_partial(self, text: str) -> None:
        if self.partials:
            self.out.write(f"\r\033[K{text}")
            self.out.flush()

    def clear_partial(self) -> None:
        if self.partials:
            self.out.write("\r\033[K")
            self.out.flush()

    def fail(self, message: str) -> None:
        self.failed = True
        self._say(message)

    def _say(self, message: str) -> None:
        self.clear_partial()
        print(f"whisperx-api live: {message}", file=self.err, flush=True)
