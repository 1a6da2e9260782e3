"""What every stage sees: a context for progress and cooperative cancellation, and Protocols."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.speakers import Diarization
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import JobCancelled


class StageContext:
    """Carries progress reports out of a stage and cancellation requests into it."""

    def __init__(
        self,
        on_progress: Callable[[float], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        *,
        on_text: Callable[[str], None] | None = None,
        live: bool = False,
        draft: bool = False,
    ) -> None:
        self._on_progress = on_progress
        self._is_cancelled = is_cancelled
        self._on_text = on_text
        self.live = live  # a live caption waits on this decode: it must not queue behind files
        # A provisional decode whose text a later one replaces (a live turn's partial): speed
        # matters more than the last point of accuracy.
        self.draft = draft

    def report(self, fraction: float) -> None:
        """Tell the owner how far along the job is (0..1)."""
        if self._on_progress is not None:
            self._on_progress(min(1.0, max(0.0, fraction)))

    @property
    def wants_text(self) -> bool:
        """True when someone reads the text so far (a streamed job); else skip building it."""
        return self._on_text is not None

    def report_text(self, text_so_far: str) -> None:
        """Tell the owner the transcript text decoded so far (what streaming clients see)."""
        if self._on_text is not None:
            self._on_text(text_so_far)

    def scaled(self, low: float, high: float) -> StageContext:
        """A context whose 0..1 progress lands in `low..high` of this one's."""
        return StageContext(
            lambda f: self.report(low + (high - low) * f),
            self._is_cancelled,
            on_text=self._on_text,
            live=self.live,
            draft=self.draft,
        )

    def with_text_view(self, view: Callable[[str], str]) -> StageContext:
        """A context whose text reports pass through `view` first (what may be shown yet)."""
        on_text = self._on_text
        return StageContext(
            self._on_progress,
            self._is_cancelled,
            on_text=None if on_text is None else lambda text: on_text(view(text)),
            live=self.live,
            draft=self.draft,
        )

    def check_cancelled(self) -> None:
        """Raise `JobCancelled` when the owner asked us to stop; call between units of work."""
        if self._is_cancelled is not None and self._is_cancelled():
            raise JobCancelled("the job was cancelled")


class TranscriptionBackend(Protocol):
    """Turns audio into a Transcript; owns its models."""

    def available_models(self) -> list[str]:
        """Model names this backend can serve without a download."""
        ...

    def resolve_model(self, name: str) -> str:
        """The canonical name for `name`, or raise `ModelNotFound`."""
        ...

    def check_device(self, device: str | None, device_index: int | None) -> None:
        """Raise `InvalidRequest` when a per-request device cannot be used here."""
        ...

    def check_options(self, options: TranscriptionOptions) -> None:
        """Raise `InvalidRequest` (at submit) for options this backend could never run."""
        ...

    def loaded_models(self) -> list[str]:
        """Names of the models now in memory (`name@device:index` when not the default)."""
        ...

    def load_model(self, name: str) -> str:
        """Load `name` now (preload); returns the canonical name."""
        ...

    def unload_model(self, name: str) -> str:
        """Drop `name` from memory; raises `Conflict` while in use, `NotFound` if not loaded."""
        ...

    def load_count(self, name: str) -> int:
        """How many times `name` has been loaded since start."""
        ...

    def transcribe(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        """Run VAD, batched decoding and word timing on `audio`."""
        ...

    def close(self) -> None:
        """Release every model."""
        ...


class ManagedModels(Protocol):
    """The model lifecycle every stage exposes to the management endpoints."""

    def loaded_models(self) -> list[str]:
        """Names of the models now in memory."""
        ...

    def load_model(self, name: str) -> str:
        """Load `name` now; returns the canonical name."""
        ...

    def unload_model(self, name: str) -> str:
        """Drop `name`; `Conflict` while in use, `NotFound` if not loaded."""
        ...

    def close(self) -> None:
        """Release every model."""
        ...


class AlignmentBackend(ManagedModels, Protocol):
    """Refines word timings; models are keyed by language."""

    def align(self, transcript: Transcript, audio: DecodedAudio, ctx: StageContext) -> Transcript:
        """The transcript with better word start and end times; every word keeps times."""
        ...


@dataclass(frozen=True, slots=True)
class DiarizationRequest:
    """What one job asks of the diarization stage."""

    min_speakers: int | None = None
    max_speakers: int | None = None
    want_embeddings: bool = False
    hf_token: str | None = None


class DiarizationBackend(ManagedModels, Protocol):
    """Finds who spoke when."""

    def check_request(self, request: DiarizationRequest) -> None:
        """Raise `InvalidRequest` at submit time when this request could never run here."""
        ...

    def diarize(
        self, audio: DecodedAudio, request: DiarizationRequest, ctx: StageContext
    ) -> Diarization:
        """Speaker turns (labels SPEAKER_00, ... by first appearance)."""
        ...

    @property
    def voice_threshold(self) -> float:
        """Cosine similarity from which a reference voice names a diarized speaker."""
        ...

    def embed_voices(self, clips: Sequence[DecodedAudio]) -> list[tuple[float, ...]]:
        """One speaker embedding per clip, in the space of `diarize`'s embeddings."""
        ...


class SpeechProbabilities(Protocol):
    """A streaming voice activity model: fed 16 kHz samples in order, it answers one speech
    probability per `window` samples, carrying its state across calls (live sessions)."""

    @property
    def window(self) -> int:
        """Samples per probability."""
        ...

    def feed(self, samples: npt.NDArray[np.float32]) -> list[float]:
        """Probabilities for every whole window completed by `samples` (the rest is kept)."""
        ...
