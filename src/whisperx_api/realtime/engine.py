"""What live sessions share in one process: the transcription backend, the VAD, the speaker
model that labels turns, the threads decodes run on, and the count of open sessions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from whisperx_api.config import RealtimeSettings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import (
    ModelNotFound,
    RealtimeUnavailable,
    TooManySessions,
    UnsupportedParameter,
)
from whisperx_api.executors import pipeline_pool, run_in, run_io
from whisperx_api.pipeline.stage import (
    DiarizationBackend,
    SpeechProbabilities,
    StageContext,
    TranscriptionBackend,
)
from whisperx_api.realtime.speakers import TurnVoice, turn_voice

VadFactory = Callable[[], SpeechProbabilities]
log = logging.getLogger(__name__)


class LiveEngine:
    """Admits sessions up to `REALTIME__MAX_SESSIONS` and runs their decodes.

    Decodes go through the backend's one `transcribe` entry point, the one file jobs use, so
    live turns share its models (and its batching) with them. They run on a pipeline pool of
    their own, one thread per session slot: a session has at most one decode in flight, and a
    long file job holding the job pool's threads never delays a live caption.

    Speaker labels (sessions with `diarize` on) run on the `diarizer` given here, a diarization
    backend of the live sessions' own (so a file job's diarization never holds up a turn's
    label), on threads of their own: a turn's voice is found while its text is decoded.
    """

    def __init__(
        self,
        transcriber: TranscriptionBackend,
        vad: VadFactory,
        settings: RealtimeSettings,
        *,
        owns_transcriber: bool = False,
        diarizer: DiarizationBackend | None = None,
    ) -> None:
        self.transcriber = transcriber
        self._owns_transcriber = owns_transcriber
        self._diarizer = diarizer
        self.settings = settings
        self._vad = vad
        self._open = 0
        self._pool = pipeline_pool(settings.max_sessions)
        self._voice_pool = pipeline_pool(settings.max_sessions) if diarizer is not None else None

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

    def voice_threshold(self) -> float:
        """The similarity from which two voices are one speaker; `UnsupportedParameter` (naming
        `param`) when this server has no speaker model."""
        return self._speaker_model(param="diarize").voice_threshold

    def _speaker_model(self, param: str) -> DiarizationBackend:
        if self._diarizer is None:
            raise UnsupportedParameter(
                "Speaker diarization is not configured on this server, so live turns cannot "
                "be labelled with speakers.",
                param=param,
            )
        return self._diarizer

    def warm_speakers(self) -> None:
        """Load the speaker model in the background (a session just turned labels on), so the
        first turn's label does not wait for it; a failure shows at that turn instead."""
        if self._diarizer is None or self._voice_pool is None:
            return
        self._voice_pool.submit(_load_quietly, self._diarizer)

    async def turn_voice(self, samples: npt.NDArray[np.float32]) -> TurnVoice:
        """The voice of a completed turn's majority speaker, off the event loop."""
        diarizer = self._speaker_model(param="diarize")
        assert self._voice_pool is not None  # (made with the diarizer)
        return await run_in(self._voice_pool, turn_voice, diarizer, samples)

    def close(self) -> None:
        """Stop taking decodes (one running finishes in its thread); release own backends."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._voice_pool is not None:
            self._voice_pool.shutdown(wait=False, cancel_futures=True)
        if self._owns_transcriber:
            self.transcriber.close()
        if self._diarizer is not None:
            self._diarizer.close()


def _load_quietly(diarizer: DiarizationBackend) -> None:
    try:
        diarizer.load_model("")
    except Exception:
        log.warning("the live sessions' speaker model did not load", exc_info=True)
