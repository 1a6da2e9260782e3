"""MODE=embedded: one process, SQLite, local disk, an in-process worker pool."""

from __future__ import annotations

from whisperx_api.config import Settings
from whisperx_api.jobs.ports import Background
from whisperx_api.jobs.service import JobService
from whisperx_api.jobs.signals import JobSignals
from whisperx_api.jobs.store import SqliteJobStore
from whisperx_api.jobs.webhooks import DeliveryPolicy, WebhookDeliverer, WebhookOutbox
from whisperx_api.jobs.worker import WorkerPool
from whisperx_api.memory import available_memory_bytes
from whisperx_api.pipeline.admission import MIB, MemoryBudget, default_budget_bytes
from whisperx_api.pipeline.registry import (
    DEFAULT_TRANSCRIPTION,
    BackendRegistry,
    default_registry,
    model_catalog,
    transcription_backend_name,
)
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.sealing import TokenSealer
from whisperx_api.pipeline.segmentation import SegmentRules
from whisperx_api.pipeline.stage import (
    DiarizationBackend,
    SpeechProbabilities,
    TranscriptionBackend,
)
from whisperx_api.realtime.engine import LiveEngine
from whisperx_api.runtime.base import Runtime
from whisperx_api.runtime.models import ModelAccess, RuntimeModels
from whisperx_api.runtime.voices import DiarizerEmbedder
from whisperx_api.storage.local import LocalBlobStore
from whisperx_api.voices.ports import VoiceStore
from whisperx_api.voices.service import VoiceService
from whisperx_api.voices.sqlite import SqliteVoiceStore

_DATABASE = "jobs.sqlite3"  # jobs and saved voices, each store with its own tables


def build_runner(settings: Settings, registry: BackendRegistry) -> PipelineRunner:
    """The configured backend of every stage, in one runner; nothing is loaded yet."""
    backends = settings.backends
    return PipelineRunner(
        registry.transcription(transcription_backend_name(settings))(settings),
        settings.limits.max_audio_seconds,
        aligner=registry.alignment_backends.factory(backends.alignment)(settings),
        diarizer=registry.diarization_backends.factory(backends.diarization)(settings),
        segment_rules=segment_rules(settings),
        sealer=configured_sealer(settings) or TokenSealer.ephemeral(),
        max_decode_seconds=settings.limits.max_decode_seconds,
        admission=memory_budget(settings),
    )


def build_models(settings: Settings, runner: PipelineRunner) -> RuntimeModels:
    """The runner's models, with the hub-download gate when faster-whisper serves them (other
    backends resolve their own names)."""
    if transcription_backend_name(settings) != DEFAULT_TRANSCRIPTION:
        return RuntimeModels(runner)
    return RuntimeModels(runner, ModelAccess(model_catalog(settings), settings.models.allowed))


def memory_budget(settings: Settings, available: int | None = None) -> MemoryBudget:
    """The budget jobs are admitted against: `JOBS__MEMORY_BUDGET_MB`, else one sized from the
    memory available now (`available`, or read from the system)."""
    configured = settings.jobs.memory_budget_mb
    if configured is not None:
        return MemoryBudget(configured * MIB)
    if available is None:
        available = available_memory_bytes()
    return MemoryBudget(default_budget_bytes(available))


def configured_sealer(settings: Settings) -> TokenSealer | None:
    """The sealer keyed by `SECRETS__KEY`, or None when no key is configured."""
    key = settings.secrets.key
    return TokenSealer.from_secret(key.get_secret_value()) if key is not None else None


def segment_rules(settings: Settings) -> SegmentRules:
    """The configured segmentation: where a pause ends a segment."""
    return SegmentRules(pause_seconds=settings.subtitles.pause_seconds)


def build_embedded(settings: Settings, registry: BackendRegistry | None = None) -> Runtime:
    """Wire the embedded runtime; nothing is loaded or started until `Runtime.start`."""
    registry = registry or default_registry()
    runner = build_runner(settings, registry)
    data_dir = settings.jobs.data_dir
    store = SqliteJobStore(data_dir / _DATABASE)
    blobs = LocalBlobStore(data_dir)
    signals = JobSignals()
    workers = settings.worker_count
    pool = WorkerPool(store, blobs, runner, signals, workers, settings.jobs.max_attempts)
    service = JobService(
        store,
        blobs,
        runner,
        signals,
        max_file_size=settings.limits.max_file_size,
        max_queued_jobs=settings.limits.max_queued_jobs,
        batch_width=workers,
    )
    sync_timeout = settings.jobs.sync_timeout_seconds or None
    return Runtime(
        preload=tuple(settings.backends.preload),
        jobs=service,
        runner=runner,
        store=store,
        workers=pool,
        max_file_size=settings.limits.max_file_size,
        sync_timeout=sync_timeout,
        retention_seconds=settings.jobs.retention_hours * 3600,
        cleanup_interval_seconds=settings.jobs.cleanup_interval_hours * 3600,
        shutdown_grace_seconds=settings.jobs.shutdown_grace_seconds,
        webhooks=build_webhooks(settings, store),
        live=build_live(settings, runner.transcriber, own_diarizer(settings, registry)),
        models=build_models(settings, runner),
        voices=build_voices(
            settings, SqliteVoiceStore(data_dir / _DATABASE), service, runner.diarizer
        ),
    )


def build_voices(
    settings: Settings, store: VoiceStore, jobs: JobService, diarizer: DiarizationBackend | None
) -> VoiceService:
    """The saved-voice registry in `store`, embedding clips with `diarizer`'s speaker model."""
    embedder = DiarizerEmbedder(
        diarizer, settings.limits.max_file_size, settings.limits.max_decode_seconds
    )
    return VoiceService(store, embedder, jobs, settings.voices.max_per_key)


def build_live(
    settings: Settings,
    transcriber: TranscriptionBackend,
    diarizer: DiarizationBackend | None = None,
    *,
    owns_transcriber: bool = False,
) -> LiveEngine:
    """Live sessions on `transcriber` (the pipeline's own, so they share its models), their
    speaker labels on `diarizer`."""
    return LiveEngine(
        transcriber,
        silero_stream,
        settings.realtime,
        owns_transcriber=owns_transcriber,
        diarizer=diarizer,
    )


def own_diarizer(settings: Settings, registry: BackendRegistry) -> DiarizationBackend:
    """A copy of the configured diarization backend apart from the pipeline's: its speaker
    model loads at first use (the live sessions' first labelled turn; an API replica's first
    voice enrolment), and a file job's diarization never holds it."""
    return registry.diarization_backends.factory(settings.backends.diarization)(settings)


def silero_stream() -> SpeechProbabilities:
    """A streaming Silero VAD (imported when a session starts, not with the runtime)."""
    from whisperx_api.pipeline.stages.silero_stream import SileroStream

    return SileroStream()


def build_webhooks(settings: Settings, outbox: WebhookOutbox) -> Background | None:
    """The delivery loop over `outbox`; none without a secret (webhook_url is refused then,
    and deliveries left from an earlier configuration wait until a secret is set again)."""
    secret = settings.webhooks.secret
    if secret is None:
        return None
    return WebhookDeliverer(
        outbox, secret.get_secret_value(), DeliveryPolicy.from_settings(settings)
    )
