"""Diarization with pyannote.audio, for users who have a Hugging Face token.

pyannote's pipelines are gated on the hub: without a token (per request, `HF_TOKEN`, or
`WHISPER_HF_TOKEN_FILE`) the request is refused with a clear 400 — never a silent fallback.

A pipeline is cached per model *and token* (by the token's SHA-256, never the token itself): a
pipeline loaded with one caller's token never serves another caller, whose token the hub has
not checked.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.speakers import Diarization, SpeakerTurn
from whisperx_api.errors import BackendError, InvalidRequest, MissingToken, NotFound
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext
from whisperx_api.pipeline.stages.extras import require

DEFAULT_PYANNOTE_MODEL = "pyannote/speaker-diarization-3.1"
# Cosine similarity from which a reference voice names a speaker. Not calibrated here (the gated
# weights are not available offline); pyannote's own clustering merges centroids at about this.
PYANNOTE_VOICE_THRESHOLD = 0.5
# Pipelines kept per model for callers' own tokens (the server token's is always kept); the
# oldest goes first, so many distinct tokens cannot pile up copies in memory.
MAX_CALLER_PIPELINES = 2

# (model name, token, device) -> a pyannote-like pipeline: called with {"waveform", "sample_rate"}
PipelineLoader = Callable[[str, str, str], Any]


class PyannoteDiarizer:
    """`BACKENDS__DIARIZATION=pyannote`."""

    def __init__(
        self,
        model: str = DEFAULT_PYANNOTE_MODEL,
        default_token: str | None = None,
        device: str = "cpu",
        loader: PipelineLoader | None = None,
    ) -> None:
        self._model = model
        self._default_token = default_token
        self._device = device
        self._loader = loader or load_pyannote_pipeline
        self._pipelines: dict[tuple[str, str], Any] = {}  # (model, token digest) -> pipeline
        self._lock = threading.Lock()

    def check_request(self, request: DiarizationRequest) -> None:
        if not (request.hf_token or self._default_token):
            raise MissingToken

    def diarize(
        self, audio: DecodedAudio, request: DiarizationRequest, ctx: StageContext
    ) -> Diarization:
        token = request.hf_token or self._default_token
        if not token:
            raise MissingToken
        pipeline = self._pipeline(token)
        ctx.check_cancelled()
        output = pipeline(
            {"waveform": _waveform(audio), "sample_rate": SAMPLE_RATE},
            **_speaker_bounds(request),
        )
        return parse_output(output, request.want_embeddings)

    @property
    def voice_threshold(self) -> float:
        return PYANNOTE_VOICE_THRESHOLD

    def embed_voices(self, clips: Sequence[DecodedAudio]) -> list[tuple[float, ...]]:
        """Each clip diarized as one speaker by the same pipeline: its centroid embedding."""
        pipeline = self._loaded_pipeline()
        vectors: list[tuple[float, ...]] = []
        for clip in clips:
            output = pipeline(
                {"waveform": _waveform(clip), "sample_rate": SAMPLE_RATE},
                num_speakers=1,
                return_embeddings=True,
            )
            found = parse_output(output, want_embeddings=True).embeddings
            if not found:
                raise BackendError("pyannote found no speech in a known-speaker reference.")
            vectors.append(next(iter(found.values())))
        return vectors

    def loaded_models(self) -> list[str]:
        with self._lock:
            return sorted({model for model, _ in self._pipelines})

    def load_model(self, name: str) -> str:
        if not self._default_token:
            raise MissingToken
        self._pipeline(self._default_token, name or self._model)
        return name or self._model

    def unload_model(self, name: str) -> str:
        model = name or self._model
        with self._lock:
            keys = [key for key in self._pipelines if key[0] == model]
            if not keys:
                raise NotFound(f"Diarization model '{name}' is not loaded.")
            for key in keys:  # every caller's copy
                del self._pipelines[key]
        return model

    def close(self) -> None:
        with self._lock:
            self._pipelines.clear()

    def _loaded_pipeline(self) -> Any:
        """The server token's pipeline (known speakers come only with requests that carry no
        token of their own), never one loaded with a caller's token."""
        if not self._default_token:
            raise MissingToken
        return self._pipeline(self._default_token)

    def _pipeline(self, token: str, name: str | None = None) -> Any:
        key = (name or self._model, _digest(token))
        with self._lock:
            if key not in self._pipelines:
                self._pipelines[key] = self._loader(key[0], token, self._device)
                self._evict_caller_pipelines(key[0])
            return self._pipelines[key]

    def _evict_caller_pipelines(self, model: str) -> None:
        server = _digest(self._default_token) if self._default_token else None
        callers = [key for key in self._pipelines if key[0] == model and key[1] != server]
        for key in callers[:-MAX_CALLER_PIPELINES]:  # oldest first: dicts keep insertion order
            del self._pipelines[key]  # a job still using it keeps its own reference


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_pyannote_pipeline(model: str, token: str, device: str) -> Any:
    """pyannote.audio's public `Pipeline.from_pretrained`, moved to `device`."""
    audio = require("pyannote.audio", "pyannote")
    torch = require("torch", "pyannote")
    try:
        pipeline = audio.Pipeline.from_pretrained(model, token=token)
    except TypeError:  # pyannote.audio 3.x spells it use_auth_token
        pipeline = audio.Pipeline.from_pretrained(model, use_auth_token=token)
    if pipeline is None:
        raise InvalidRequest(
            f"pyannote could not load '{model}': check the token and that its terms were accepted.",
            param="hf_token",
        )
    pipeline.to(torch.device(device))
    return pipeline


def parse_output(output: Any, want_embeddings: bool) -> Diarization:
    """Read pyannote 3.x `(Annotation, embeddings)` / `Annotation` or 4.x `DiarizeOutput`."""
    annotation, embeddings = output, None
    if isinstance(output, tuple):
        annotation, embeddings = output
    elif hasattr(output, "speaker_diarization"):
        annotation = output.speaker_diarization
        embeddings = getattr(output, "speaker_embeddings", None)
    raw = [(float(seg.start), float(seg.end), str(label)) for seg, _, label in _tracks(annotation)]
    raw.sort()
    labels = _relabel(label for _, _, label in raw)
    turns = tuple(SpeakerTurn(start, end, labels[label]) for start, end, label in raw)
    vectors = _embeddings(annotation, embeddings, labels) if want_embeddings else {}
    return Diarization(turns=turns, embeddings=vectors)


def _tracks(annotation: Any) -> Iterable[tuple[Any, Any, Any]]:
    tracks: Iterable[tuple[Any, Any, Any]] = annotation.itertracks(yield_label=True)
    return tracks


def _relabel(labels: Iterable[str]) -> dict[str, str]:
    ordered = list(dict.fromkeys(labels))
    return {label: f"SPEAKER_{i:02d}" for i, label in enumerate(ordered)}


def _embeddings(
    annotation: Any, embeddings: Any, labels: dict[str, str]
) -> dict[str, tuple[float, ...]]:
    if embeddings is None:
        return {}
    order = list(annotation.labels())
    matrix = np.asarray(embeddings, dtype=np.float64)
    return {
        labels[label]: tuple(float(x) for x in matrix[i])
        for i, label in enumerate(order)
        if label in labels and i < len(matrix)
    }


def _waveform(audio: DecodedAudio) -> Any:
    torch = require("torch", "pyannote")
    return torch.from_numpy(audio.samples).unsqueeze(0)


def _speaker_bounds(request: DiarizationRequest) -> dict[str, int]:
    bounds: dict[str, int] = {}
    if request.min_speakers is not None:
        bounds["min_speakers"] = request.min_speakers
    if request.max_speakers is not None:
        bounds["max_speakers"] = request.max_speakers
    if request.want_embeddings:
        bounds["return_embeddings"] = True
    return bounds
