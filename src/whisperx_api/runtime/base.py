"""What the API needs from a runtime, whichever mode wired it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from whisperx_api.domain.audio import ClipDecoder
from whisperx_api.errors import PayloadTooLarge
from whisperx_api.jobs.ports import Background, JobStore, Monitored, ended_task
from whisperx_api.jobs.service import JobService
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stages.duration import declared_seconds
from whisperx_api.realtime.engine import LiveEngine
from whisperx_api.runtime.clips import PipelineClipDecoder
from whisperx_api.runtime.models import RuntimeModels
from whisperx_api.voices.service import VoiceService

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The job engine and pipeline the routes talk to, plus their lifecycle."""

    jobs: JobService
    runner: PipelineRunner
    store: JobStore
    workers: Background
    models: RuntimeModels  # names, loads, unloads and the download gate, for the HTTP layer
    max_file_size: int
    sync_timeout: float | None
    retention_seconds: float
    cleanup_interval_seconds: float
    preload: tuple[str, ...] = ()
    shutdown_grace_seconds: float = 30.0
    webhooks: Background | None = None  # the webhook delivery loop, when a secret is set
    live: LiveEngine | None = None  # live sessions; none on a MODE=distributed replica by default
    clips: ClipDecoder = field(default_factory=PipelineClipDecoder)  # voice references
    voices: VoiceService | None = None  # saved voices (`/v1/speakers`)
    started_at: int = field(default_factory=lambda: int(time.time()))
    _sweeper: asyncio.Task[None] | None = None
    _stopping: bool = False

    def check_upload_size(self, size: int | None) -> None:
        """413 for a file over MAX_FILE_SIZE (the body limit already stopped gross excess)."""
        if size is not None and size > self.max_file_size:
            raise PayloadTooLarge(
                f"The file is {size} bytes; the limit is {self.max_file_size} bytes."
            )

    def declared_seconds(self, source: BinaryIO) -> float | None:
        """The audio's duration as its container header states it (None when unknown), read
        without decoding; blocking, so the HTTP layer calls it off the event loop. A hint for
        refusing an obviously long download early: the decoder enforces the real limit."""
        return declared_seconds(source)

    async def start(self) -> None:
        """Preload what was asked for, start the background work and the retention sweep."""
        await asyncio.to_thread(self.runner.preload, self.preload)
        await self.workers.start()
        if self.webhooks is not None:
            await self.webhooks.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="the retention sweeper")

    def problems(self) -> list[str]:
        """What has stopped that should be running (worker loops, the retention sweeper, the
        webhook loop), one line each; empty while healthy."""
        if self._stopping:
            return []
        found: list[str] = []
        for part in (self.workers, self.webhooks):
            if isinstance(part, Monitored):
                found.extend(part.problems())
        if self._sweeper is not None and self._sweeper.done():
            found.append(ended_task(self._sweeper))
        return found

    async def stop(self) -> None:
        """Let running jobs finish (or requeue them), then release everything."""
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait([self._sweeper])  # one that died was reported by `problems`
        if self.webhooks is not None:
            await self.webhooks.stop(self.shutdown_grace_seconds)
        await self.workers.stop(self.shutdown_grace_seconds)
        await self.jobs.stop_background()
        if self.live is not None:
            self.live.close()
        if self.voices is not None:
            self.voices.close()
        self.runner.close()
        self.store.close()

    async def _sweep_forever(self) -> None:
        """Sweep on every interval; a failed sweep (storage down, a bad record) is logged and
        the next one runs as planned, so retention never silently stops."""
        while True:
            try:
                deleted = await self.jobs.sweep_expired(self.retention_seconds)
            except Exception:
                log.exception(
                    "retention sweep failed; retrying in %g s", self.cleanup_interval_seconds
                )
            else:
                if deleted:
                    log.info("retention sweep deleted %d job(s)", len(deleted))
            await asyncio.sleep(self.cleanup_interval_seconds)
