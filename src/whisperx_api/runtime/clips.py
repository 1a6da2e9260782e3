"""Inline clips (voice references) decoded by the pipeline's decoder, away from the event loop.

A clip arrives inside a request, so a bad one must cost its sender, not everyone: decoding runs
on a small pool of its own (never the event loop, never the pipeline's job threads), at most
`DECODE_THREADS` at once, under a wall-time limit, with the decoder's packet and sample budgets
for the clip's short maximum length.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.executors import run_in
from whisperx_api.pipeline.stages.decode import decode_audio

DECODE_THREADS = 2
DECODE_SECONDS = 5.0  # a real 10 s clip decodes in milliseconds


class PipelineClipDecoder:
    """`ClipDecoder` on the pipeline's bounded decoder."""

    def __init__(self, time_limit: float = DECODE_SECONDS) -> None:
        self._time_limit = time_limit
        self._pool = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="clip")

    async def decode_clip(self, data: bytes, max_seconds: float) -> DecodedAudio:
        return await run_in(self._pool, self._decode, data, max_seconds)

    def _decode(self, data: bytes, max_seconds: float) -> DecodedAudio:
        with tempfile.TemporaryDirectory(prefix="whisperx-clip-") as folder:
            path = Path(folder) / "clip"
            path.write_bytes(data)
            return decode_audio(path, max_seconds, time_limit=self._time_limit)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
