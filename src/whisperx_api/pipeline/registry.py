"""Backend name -> factory, built explicitly at startup; third parties add theirs by entry point."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from whisperx_api.pipeline.stage import TranscriptionBackend

if TYPE_CHECKING:
    from whisperx_api.config import Settings

TranscriptionFactory = Callable[["Settings"], TranscriptionBackend]
ENTRY_POINT_GROUP = "whisperx_api.transcription_backends"
DEFAULT_TRANSCRIPTION = "faster-whisper"
WHISPERX_CLI = "whisperx-cli"


class UnknownBackend(LookupError):
    """A configured backend name nobody registered."""


class BackendRegistry:
    """Factories for each stage's backends, by name."""

    def __init__(self) -> None:
        self._transcription: dict[str, TranscriptionFactory] = {}

    def register_transcription(self, name: str, factory: TranscriptionFactory) -> None:
        """Make `name` available as `BACKENDS__TRANSCRIPTION`."""
        self._transcription[name] = factory

    def transcription(self, name: str) -> TranscriptionFactory:
        """The factory for `name`, or UnknownBackend listing the known ones."""
        try:
            return self._transcription[name]
        except KeyError:
            known = ", ".join(sorted(self._transcription))
            raise UnknownBackend(
                f"BACKENDS__TRANSCRIPTION: unknown backend '{name}'; known backends: {known}"
            ) from None


def default_registry() -> BackendRegistry:
    """The built-in backends plus any installed through the entry point group."""
    registry = BackendRegistry()
    registry.register_transcription(DEFAULT_TRANSCRIPTION, _faster_whisper)
    registry.register_transcription(WHISPERX_CLI, _whisperx_cli)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        registry.register_transcription(ep.name, ep.load())
    return registry


def transcription_backend_name(settings: Settings) -> str:
    """The configured backend, except that the second seed's `WHISPER_CMD` alone (backend left
    at its default) means "run that command", as it did in the seed."""
    name = settings.backends.transcription
    if settings.whisper.cmd and name == DEFAULT_TRANSCRIPTION:
        return WHISPERX_CLI
    return name


def _faster_whisper(settings: Settings) -> TranscriptionBackend:
    from whisperx_api.pipeline.catalog import ModelCatalog
    from whisperx_api.pipeline.stages.faster_whisper import (
        DeviceConfig,
        FasterWhisperBackend,
        downloadable_models,
    )

    whisper = settings.whisper
    catalog = ModelCatalog(
        default=whisper.model,
        cache_dir=whisper.cache_dir,
        models_dir=whisper.models_dir,
        downloadable=downloadable_models(),
        allow_download=whisper.download,
    )
    devices = DeviceConfig(
        device=whisper.inference_device,
        device_index=whisper.device_index,
        compute_type=whisper.compute_type,
        cpu_threads=whisper.cpu_threads,
        num_workers=settings.worker_count,
    )
    return FasterWhisperBackend(
        catalog, devices, whisper.batch_size, whisper.chunk_size, whisper.model_ttl_seconds
    )


def _whisperx_cli(settings: Settings) -> TranscriptionBackend:
    from whisperx_api.config import ConfigError
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
        batch_size=whisper.batch_size,
        chunk_size=whisper.chunk_size,
        threads=whisper.cpu_threads,
        models_dir=whisper.models_dir,
        output_dir=whisper.output_dir,
    )
    return WhisperXCommandBackend(config)
