"""What live sessions share in one process: the transcription backend, the VAD, the threads
decodes run on, and the count of open sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from whisperx_api.config import RealtimeSettings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import ModelNotFound, RealtimeUnavailable, TooManySessions
from whisperx_api.executors import pipeline_pool, run_in, run_io
from whisperx_api.pipeline.stage import SpeechProbabilities, StageContext, TranscriptionBackend

VadFactory = Callable[[], SpeechProbabilities]


class LiveEngine:
    """Admits sessions up to `REALTIME__MAX_SESSIONS` and runs their decodes.

    Decodes go through the backend's one `transcribe` entry point, the one file jobs use, so
    live turns share its models (and its batching) with them. They run on a pipeline pool of
    their own, one thread per session slot: a session has at most one decode in flight, and a
    long file job holding the job pool's threads never delays a live caption.
    """

    def __init__(
        self,
        transcriber: TranscriptionBackend,
        vad: VadFactory,
        settings: RealtimeSettings,
        *,
        owns_transcriber: bool = False,
    ) -> None:
        self.transcriber = transcriber
        self._owns_transcriber = owns_transcriber
        self.settings = settings
        self._vad = vad
        self._open = 0
        self._pool = pipeline_pool(settings.max_sessions)

    @property
    def open_sessions(self) -> int:
        """Sessions admitted and not yet ended."""
        return self._open

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a session slot for the block; `TooManySessions` when none is free."""
        limit = self.settings.max_sessions
        if limit == 0:
            raise RealtimeUnavailable("Live sessions are turned off (REALTIME__MAX_SESSIONS=0).")
        if self._open >= limit:
            raise TooManySessions(
                f"{limit} live session(s) are open, the most this server takes "
                "(REALTIME__MAX_SESSIONS); try again later.",
                retry_after=5,
            )
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1

    def new_vad(self) -> SpeechProbabilities:
        """A fresh streaming VAD state."""
        return self._vad()

    async def resolve_model(self, name: str, param: str) -> str:
        """The backend's canonical name for `name` (off the loop: it may look at disk)."""
        try:
            return await run_io(self.transcriber.resolve_model, name)
        except ModelNotFound as exc:
            exc.param = param
            raise

    async def transcribe(
        self, samples: npt.NDArray[np.float32], options: TranscriptionOptions, *, draft: bool
    ) -> Transcript:
        """One decode of a turn (or, `draft`, a provisional one of a turn so far), off the
        event loop."""
        return await run_in(
            self._pool,
            self.transcriber.transcribe,
            DecodedAudio(samples),
            options,
            StageContext(live=True, draft=draft),
        )

    def close(self) -> None:
        """Stop taking decodes (one running finishes in its thread); release an own backend."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._owns_transcriber:
            self.transcriber.close()
