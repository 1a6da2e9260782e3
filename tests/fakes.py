"""A fake transcription backend, registered in the real registry for fast API tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.speakers import Diarization, SpeakerTurn
from whisperx_api.domain.transcript import Segment, Transcript, Word, join_texts
from whisperx_api.errors import BackendError, Conflict, InvalidRequest, ModelNotFound, NotFound
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext

FAKE_MODELS = ("base", "tiny.en")
POISON_SECONDS = 0.4  # audio this short always fails, to exercise retries and dead letters


class FakeTranscriber:
    """Deterministic words derived from the audio length; optional delay; counts loads."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[TranscriptionOptions] = []
        self.drafts: list[bool] = []  # per call: was it a draft (a live partial)?
        self.seconds: list[float] = []  # per call: the audio's length
        self.running = 0
        self.max_running = 0
        self._loaded: dict[str, int] = {}
        self._loads: dict[str, int] = {}
        self._lock = threading.Lock()

    def available_models(self) -> list[str]:
        return list(FAKE_MODELS)

    def resolve_model(self, name: str) -> str:
        canonical = name if name and name != "whisper-1" else "base"
        if canonical not in FAKE_MODELS:
            raise ModelNotFound(
                f"The model '{canonical}' does not exist. Available models: base, tiny.en."
            )
        return canonical

    def check_options(self, options: TranscriptionOptions) -> None:
        pass

    def check_device(self, device: str | None, device_index: int | None) -> None:
        if device == "cuda":
            raise InvalidRequest("CUDA device 0 is not available.", param="device")

    def loaded_models(self) -> list[str]:
        return sorted(self._loaded)

    def load_model(self, name: str) -> str:
        canonical = self.resolve_model(name)
        with self._lock:
            if canonical not in self._loaded:
                self._loaded[canonical] = 0
                self._loads[canonical] = self._loads.get(canonical, 0) + 1
        return canonical

    def unload_model(self, name: str) -> str:
        canonical = self.resolve_model(name)
        with self._lock:
            if canonical not in self._loaded:
                raise NotFound(f"Model '{canonical}' is not loaded.")
            if self._loaded[canonical]:
                raise Conflict(f"Model '{canonical}' is in use.")
            del self._loaded[canonical]
        return canonical

    def load_count(self, name: str) -> int:
        return self._loads.get(self.resolve_model(name), 0)

    def close(self) -> None:
        self._loaded.clear()

    def transcribe(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        name = self.load_model(options.model)
        with self._lock:
            self.calls.append(options)
            self.drafts.append(ctx.draft)
            self.seconds.append(audio.duration)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self._loaded[name] += 1
        try:
            return self._work(audio, options, ctx)
        finally:
            with self._lock:
                self.running -= 1
                self._loaded[name] -= 1

    def full_decodes(self) -> list[float]:
        """The audio length of each call that was not a draft, in order."""
        with self._lock:
            return [s for s, draft in zip(self.seconds, self.drafts, strict=True) if not draft]

    def _work(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        if audio.duration < POISON_SECONDS:
            raise BackendError("the fake backend always fails on very short audio")
        steps = 10
        transcript = fake_transcript(audio.duration, options)
        for i in range(steps):
            ctx.check_cancelled()
            time.sleep(self.delay / steps)
            done = transcript.segments[: (i + 1) * len(transcript.segments) // steps]
            ctx.report_text(join_texts(s.text for s in done))
            ctx.report((i + 1) / steps)
        return transcript


def fake_transcript(duration: float, options: TranscriptionOptions) -> Transcript:
    """Two segments splitting the audio, with words when asked for."""
    half = duration / 2
    texts = ("hello from the fake", "backend says goodbye")
    segments = []
    for i, text in enumerate(texts):
        start, end = i * half, (i + 1) * half
        words = _spread(text, start, end) if options.word_timestamps else ()
        segments.append(Segment(id=i, start=start, end=end, text=text, words=words))
    return Transcript(
        task=options.task,
        language=options.language or "en",
        duration=duration,
        segments=tuple(segments),
        language_probability=0.99,
    )


def _spread(text: str, start: float, end: float) -> tuple[Word, ...]:
    parts = text.split()
    step = (end - start) / len(parts)
    return tuple(
        Word(f" {w}", start + k * step, start + (k + 1) * step, score=0.9, probability=0.8)
        for k, w in enumerate(parts)
    )


class FakeDiarizer:
    """Two speakers taking turns every second; one 2-d embedding each."""

    def __init__(self) -> None:
        self.requests: list[DiarizationRequest] = []
        self.voice_clips: list[DecodedAudio] = []
        self._loaded: list[str] = []

    def check_request(self, request: DiarizationRequest) -> None:
        """Any request can run."""

    def diarize(
        self, audio: DecodedAudio, request: DiarizationRequest, ctx: StageContext
    ) -> Diarization:
        self.requests.append(request)
        speakers = max(2, request.min_speakers or 2)
        turns = []
        start = 0.0
        while start < audio.duration:
            end = min(audio.duration, start + 1.0)
            turns.append(SpeakerTurn(start, end, f"SPEAKER_{len(turns) % speakers:02d}"))
            start = end
        embeddings = (
            {f"SPEAKER_{i:02d}": (float(i), 1.0) for i in range(speakers)}
            if request.want_embeddings
            else {}
        )
        return Diarization(turns=tuple(turns), embeddings=embeddings)

    # Known speakers: a reference clip of n whole seconds embeds as (n - 2, 1.0), so a 2 s clip
    # is SPEAKER_00's voice, a 3 s clip SPEAKER_01's, and a 5 s clip nobody's here.
    voice_threshold = 0.99

    def embed_voices(self, clips: Sequence[DecodedAudio]) -> list[tuple[float, ...]]:
        self.voice_clips.extend(clips)
        return [(float(round(clip.duration) - 2), 1.0) for clip in clips]

    def loaded_models(self) -> list[str]:
        return list(self._loaded)

    def load_model(self, name: str) -> str:
        if "fake" not in self._loaded:
            self._loaded.append("fake")
        return "fake"

    def unload_model(self, name: str) -> str:
        if "fake" not in self._loaded:
            raise NotFound("Model 'fake' is not loaded.")
        self._loaded.remove("fake")
        return "fake"

    def close(self) -> None:
        self._loaded.clear()
