"""Transcription with faster-whisper: Silero VAD, batched decoding, word timestamps.

This is the WhisperX approach (VAD-cut chunks decoded in batches), with the batches shared
across requests: each loaded model has one batch scheduler, and every job running on that
model queues its chunks there (see `pipeline.batching`). Silero VAD is the model that
faster-whisper's wheel ships.
"""

from __future__ import annotations

import importlib
import logging
import re
import weakref
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from whisperx_api import metrics
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import (
    Segment,
    Transcript,
    TranscriptWarning,
    Word,
    join_texts,
)
from whisperx_api.errors import BackendError, InvalidRequest, ModelNotFound
from whisperx_api.pipeline.batching.languages import LanguageChoice
from whisperx_api.pipeline.batching.scheduler import BatchScheduler
from whisperx_api.pipeline.batching.whisper import (
    ChunkResult,
    ChunkWork,
    JobOutcome,
    JobRequest,
    WhisperBatchRunner,
    default_batch_size,
    transcribe_job,
)
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.guard import clean_segment, low_confidence
from whisperx_api.pipeline.models import ModelCache
from whisperx_api.pipeline.spoken_languages import language_switches, spoken_longest
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.vad_probs import speech_share

log = logging.getLogger(__name__)

_NUMERAL = re.compile(r"[0-9%$£€¥]")


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Where and how models run."""

    device: str = "auto"
    device_index: int = 0
    compute_type: str = "default"
    cpu_threads: int = 0
    num_workers: int = 1
    cpu_batched_encoder: bool = False  # the GPU's one-encoder-call-per-batch path, on a CPU


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 can use here (0 without a GPU or a CUDA build)."""
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count())


def whisper_model(source: str, **placement: Any) -> Any:
    """faster-whisper's `WhisperModel` (imported on first load)."""
    from faster_whisper import WhisperModel

    return WhisperModel(source, **placement)


# faster-whisper's beam size for batched decoding, which this server has always used.
_BEAM_SIZE = 5

SegmentGuard = Callable[
    [Segment, str, float | None], tuple[Segment | None, list[TranscriptWarning]]
]
"""(segment, its language, the share of its span the voice detector called speech) -> the
segment to keep (None: dropped) and the warnings saying what was done (`guard.clean_segment`)."""


@dataclass
class _Loaded:
    model: Any
    runner: WhisperBatchRunner
    scheduler: BatchScheduler[ChunkWork, ChunkResult]
    live_scheduler: BatchScheduler[ChunkWork, ChunkResult]
    batch_size: int
    numeral_tokens: list[int] | None = field(default=None)


class FasterWhisperBackend:
    """The default transcription backend."""

    def __init__(
        self,
        catalog: ModelCatalog,
        devices: DeviceConfig,
        batch_size: int | None = None,
        chunk_size: int = 30,
        ttl_seconds: float = -1,
        max_loaded: int | None = None,
        *,
        cuda_devices: Callable[[], int] = cuda_device_count,
        model_factory: Callable[..., Any] = whisper_model,
        segment_guard: SegmentGuard = clean_segment,
    ) -> None:
        """`cuda_devices` and `model_factory` are the CTranslate2 calls that placement makes:
        tests pass their own to check the CUDA choices on a machine without a GPU.
        `segment_guard` cleans each decoded segment; tests pass one that keeps everything to
        see what the decoder itself wrote."""
        # The library and its Silero VAD session (which every request uses and nothing unloads)
        # are set up now, not at the first request: a broken install fails at startup, and the
        # process's baseline memory holds what stays after every Whisper model is unloaded.
        importlib.import_module("faster_whisper.vad").get_vad_model()
        self._catalog = catalog
        self._devices = devices
        self._batch_size = batch_size
        self._chunk_size = chunk_size
        self._cuda_devices = cuda_devices
        self._model_factory = model_factory
        self._segment_guard = segment_guard
        self._schedulers: weakref.WeakSet[BatchScheduler[ChunkWork, ChunkResult]] = (
            weakref.WeakSet()
        )
        self._cache: ModelCache[_Loaded] = ModelCache(
            self._load, ttl_seconds, stage="transcription", max_loaded=max_loaded
        )

    def available_models(self) -> list[str]:
        return self._catalog.available()

    def resolve_model(self, name: str) -> str:
        return self._catalog.resolve(name).name

    def loaded_models(self) -> list[str]:
        return self._cache.loaded()

    def load_model(self, name: str) -> str:
        canonical = self.resolve_model(name)
        self._cache.load(canonical)
        return canonical

    def unload_model(self, name: str) -> str:
        """`name`, or a listed `name@device:index`, canonicalised the way `transcribe` keys it."""
        base, at, placement = name.partition("@")
        device: str | None = None
        index: int | None = None
        if at:
            device, _, number = placement.partition(":")
            if device not in ("cpu", "cuda") or not number.isdigit() or len(number) > 3:
                raise ModelNotFound(f"'{name}' is not a loaded model's name; see /models/list.")
            index = int(number)
        key = self._cache_key(self._catalog.canonical(base), device, index)
        self._cache.unload(key)
        return key

    def check_options(self, options: TranscriptionOptions) -> None:
        """Every option the form accepts runs here."""

    def check_device(self, device: str | None, device_index: int | None) -> None:
        wanted, index = self._placement(device, device_index)
        if wanted not in ("cpu", "cuda"):
            raise InvalidRequest(f"Unknown device '{wanted}'; use cpu or cuda.", param="device")
        if wanted == "cuda":
            count = self._cuda_devices()
            if index >= count:
                raise InvalidRequest(
                    f"CUDA device {index} is not available; this machine has {count} CUDA "
                    "device(s).",
                    param="device",
                )

    def load_count(self, name: str) -> int:
        return self._cache.load_count(self._catalog.canonical(name))

    def close(self) -> None:
        # Each scheduler finishes the batch it is running before the models go: a process that
        # exits while a batch is inside CTranslate2 aborts instead of exiting cleanly.
        for scheduler in list(self._schedulers):
            scheduler.close()
        self._cache.close()

    def transcribe(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        name = self.resolve_model(options.model)
        key = self._cache_key(name, options.device, options.device_index)
        with self._cache.acquire(key) as loaded:
            outcome = JobOutcome(options.language)
            segments = transcribe_job(
                loaded.live_scheduler if ctx.live else loaded.scheduler,
                loaded.runner,
                audio.samples,
                self._request(loaded, options, draft=ctx.draft),
                outcome,
                ctx,
            )
            with closing(segments):
                collected = _collect(segments, audio.duration, ctx, outcome, self._segment_guard)
        first = (outcome.language or "en", float(outcome.language_probability))
        language, probability = spoken_longest(collected.segments, collected.probabilities, first)
        warnings = (
            *collected.warnings,
            *low_confidence(collected.segments),
            *language_switches(collected.segments, language),
        )
        return Transcript(
            task=options.task,
            language=language,
            language_probability=probability,
            duration=audio.duration,
            segments=tuple(collected.segments),
            warnings=tuple(sorted(warnings, key=_when)),
        )

    def _request(
        self, loaded: _Loaded, options: TranscriptionOptions, *, draft: bool
    ) -> JobRequest:
        return JobRequest(
            task=options.task.value,
            language=options.language,
            prompt=options.prompt or None,
            hotwords=options.hotwords or None,
            temperature=options.temperature,
            word_timestamps=options.word_timestamps,
            suppress_tokens=tuple(self._suppressed(loaded, options)),
            chunk_seconds=options.chunk_size or self._chunk_size,
            vad_parameters=vad_parameters(options),
            ahead=options.batch_size or loaded.batch_size,
            draft=draft,
            languages=options.languages,
        )

    def _suppressed(self, loaded: _Loaded, options: TranscriptionOptions) -> list[int]:
        if not options.suppress_numerals:
            return [-1]
        if loaded.numeral_tokens is None:
            loaded.numeral_tokens = _numeral_tokens(loaded.model)
        return [-1, *loaded.numeral_tokens]

    def _cache_key(self, name: str, device: str | None, device_index: int | None) -> str:
        """The default placement keeps the plain name; others are `name@device:index`.

        A placement is checked against the devices that exist before it becomes a key, so no
        path (submit, worker, unload) can key a copy on a device this machine lacks.
        """
        if device is None and device_index is None:
            return name
        self.check_device(device, device_index)
        placement = self._placement(device, device_index)
        if placement == self._placement(None, None):
            return name
        return f"{name}@{placement[0]}:{placement[1]}"

    def _placement(self, device: str | None, device_index: int | None) -> tuple[str, int]:
        wanted = device or self._devices.device
        if wanted == "auto":
            wanted = "cuda" if self._cuda_devices() > 0 else "cpu"
        index = self._devices.device_index if device_index is None else device_index
        return wanted, index if wanted == "cuda" else 0

    def _load(self, key: str) -> _Loaded:
        name, _, placement = key.partition("@")
        device_name, _, index = placement.partition(":")
        device, device_index = self._placement(device_name or None, int(index) if index else None)
        location = self._catalog.resolve(name)
        compute_type = self._compute_type(device)
        try:
            model = self._model_factory(
                location.source,
                device=device,
                device_index=device_index,
                compute_type=compute_type,
                cpu_threads=self._devices.cpu_threads,
                num_workers=self._devices.num_workers,
                local_files_only=location.is_local,
            )
        except (OSError, ValueError) as exc:  # missing files, a hub that does not answer
            log.warning("loading the model %s from %s failed: %s", name, location.source, exc)
            available = ", ".join(self._catalog.available()) or "none"
            raise ModelNotFound(
                f"The model '{name}' could not be loaded (the server log says why). "
                f"Available models: {available}."
            ) from exc
        except RuntimeError as exc:  # CTranslate2: a corrupt model file, out of memory, ...
            raise BackendError(f"The model '{name}' could not be loaded: {exc}") from exc
        per_batch = device != "cpu" or self._devices.cpu_batched_encoder
        runner = WhisperBatchRunner(model, _BEAM_SIZE, encode_per_batch=per_batch)
        size = self._batch_size or default_batch_size(device)
        scheduler: BatchScheduler[ChunkWork, ChunkResult] = BatchScheduler(
            runner, size, name=f"batches-{key}", on_batch=metrics.jobs_in_batch
        )
        # Live-caption turns batch among themselves on a scheduler of their own, so a turn never
        # waits for a file job's batch of chunks to finish; the model's second CTranslate2
        # worker (see `registry.model_workers`) runs it alongside.
        live: BatchScheduler[ChunkWork, ChunkResult] = BatchScheduler(
            runner, size, name=f"live-batches-{key}"
        )
        self._schedulers.update((scheduler, live))
        return _Loaded(
            model=model, runner=runner, scheduler=scheduler, live_scheduler=live, batch_size=size
        )

    def _compute_type(self, device: str) -> str:
        compute_type = self._devices.compute_type
        if compute_type == "default":
            return "float16" if device == "cuda" else "int8"
        return compute_type


def _when(warning: TranscriptWarning) -> tuple[float, float]:
    return warning.start, warning.end


@dataclass
class _Collected:
    """The kept segments, the detector's probability for each one's language, and what the
    guard removed."""

    segments: list[Segment] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    warnings: list[TranscriptWarning] = field(default_factory=list)


def _collect(
    raw: Iterable[tuple[Any, LanguageChoice]],
    duration: float,
    ctx: StageContext,
    outcome: JobOutcome,
    segment_guard: SegmentGuard,
) -> _Collected:
    """Each decoded segment through the guard (`pipeline.guard`) as it comes, so streamed text
    never shows what the final transcript drops."""
    collected = _Collected()
    text = ""
    for item, choice in raw:
        ctx.check_cancelled()
        decoded = _segment(len(collected.segments), item, choice.language)
        probabilities = outcome.speech_probabilities
        share = (
            None
            if probabilities is None
            else speech_share(probabilities, decoded.start, decoded.end)
        )
        segment, warnings = segment_guard(decoded, choice.language, share)
        collected.warnings.extend(warnings)
        if segment is not None:
            collected.segments.append(segment)
            collected.probabilities.append(float(choice.probability))
            if ctx.wants_text:
                text = join_texts((text, segment.text))
                ctx.report_text(text)
        ctx.report(item.end / duration if duration > 0 else 1.0)
    return collected


def _segment(index: int, item: Any, language: str) -> Segment:
    words = tuple(
        Word(
            text=w.word,
            start=float(w.start),
            end=float(w.end),
            score=float(w.probability),
            probability=float(w.probability),
        )
        for w in (item.words or ())
    )
    return Segment(
        id=index,
        start=float(item.start),
        end=float(item.end),
        text=item.text.strip(),
        words=words,
        seek=int(item.seek),
        tokens=tuple(int(t) for t in item.tokens),
        temperature=float(item.temperature or 0.0),
        avg_logprob=float(item.avg_logprob),
        compression_ratio=float(item.compression_ratio),
        no_speech_prob=float(item.no_speech_prob),
        language=language,
    )


# faster-whisper's own choice for batched decoding when no VAD parameters are given.
_BATCHED_MIN_SILENCE_MS = 160


def vad_parameters(options: TranscriptionOptions) -> dict[str, float] | None:
    """OpenAI's server_vad fields as Silero VadOptions; None keeps faster-whisper's defaults."""
    given = {
        "threshold": options.vad_threshold,
        "speech_pad_ms": options.vad_prefix_padding_ms,
        "min_silence_duration_ms": options.vad_silence_duration_ms,
    }
    chosen = {k: v for k, v in given.items() if v is not None}
    if not chosen:
        return None
    return {"min_silence_duration_ms": _BATCHED_MIN_SILENCE_MS, **chosen}


def _numeral_tokens(model: Any) -> list[int]:
    tokenizer = model.hf_tokenizer
    eot = tokenizer.token_to_id("<|endoftext|>")
    return [
        i for i in range(eot) if _NUMERAL.search(tokenizer.decode([i], skip_special_tokens=False))
    ]
