"""MODE=kafka: API replicas (no models) and `whisperx-api worker` processes, over Kafka and S3.

Wiring only. Both sides share the job state in the S3 job store and the audio in the S3 blob
store; the API publishes one Kafka message per job, workers consume them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from typing import TYPE_CHECKING

from whisperx_api.config import Settings
from whisperx_api.distributed.kafka_dispatch import KafkaDispatch
from whisperx_api.distributed.kafka_queue import KafkaJobConsumer, KafkaJobProducer, ensure_topics
from whisperx_api.distributed.kafka_worker import KafkaWorker, WorkerPolicy
from whisperx_api.distributed.remote import RemoteStage, RemoteTranscriber
from whisperx_api.distributed.s3 import S3BlobStore, ensure_bucket, make_s3_client
from whisperx_api.distributed.s3_store import S3JobStore
from whisperx_api.distributed.s3_voices import S3VoiceStore
from whisperx_api.distributed.staged_s3 import StagedS3Audio
from whisperx_api.jobs.service import JobService
from whisperx_api.jobs.signals import JobSignals
from whisperx_api.pipeline.registry import (
    BackendRegistry,
    default_registry,
    model_catalog,
    transcription_backend_name,
)
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.realtime.engine import LiveEngine
from whisperx_api.runtime.base import Runtime
from whisperx_api.runtime.embedded import (
    build_live,
    build_models,
    build_runner,
    build_voices,
    build_webhooks,
    configured_sealer,
    own_diarizer,
)
from whisperx_api.storage.local import LocalBlobStore
from whisperx_api.storage.private import private_dir

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def build_distributed_api(settings: Settings, registry: BackendRegistry | None = None) -> Runtime:
    """An API replica: checks and stages uploads, records jobs in S3, publishes them to Kafka."""
    registry = registry or default_registry()
    registry.diarization_backends.factory(settings.backends.diarization)  # unknown name: fail now
    registry.alignment_backends.factory(settings.backends.alignment)
    client = make_s3_client(settings.s3)
    store = S3JobStore(client, settings.s3.bucket)
    private_dir(settings.jobs.data_dir)
    audio = StagedS3Audio(
        LocalBlobStore(settings.jobs.data_dir / "staging"), S3BlobStore(client, settings.s3.bucket)
    )
    runner = PipelineRunner(
        RemoteTranscriber(model_catalog(settings)),
        settings.limits.max_audio_seconds,
        aligner=RemoteStage("language"),
        diarizer=RemoteStage("model"),
        sealer=configured_sealer(settings),  # none: a worker elsewhere could not open a token
    )
    dispatch = KafkaDispatch(
        KafkaJobProducer.from_settings(settings.kafka, client_id="whisperx-api"),
        store.mark_announced,
        prepare=lambda: prepare_infrastructure(settings, client),
    )
    service = JobService(
        store,
        audio,
        runner,
        JobSignals(),
        max_file_size=settings.limits.max_file_size,
        max_queued_jobs=settings.limits.max_queued_jobs,
        dispatcher=dispatch,
    )
    return Runtime(
        jobs=service,
        runner=runner,
        store=store,
        workers=dispatch,
        max_file_size=settings.limits.max_file_size,
        sync_timeout=settings.jobs.sync_timeout_seconds or None,
        retention_seconds=settings.jobs.retention_hours * 3600,
        cleanup_interval_seconds=settings.jobs.cleanup_interval_hours * 3600,
        webhooks=build_webhooks(settings, store),  # workers need no egress
        live=build_replica_live(settings, registry),
        models=build_models(settings, runner),
        voices=build_voices(
            settings,
            S3VoiceStore(client, settings.s3.bucket),
            service,
            own_diarizer(settings, registry),  # the workers compare speakers to its embeddings
        ),
    )


def build_replica_live(settings: Settings, registry: BackendRegistry) -> LiveEngine | None:
    """Live sessions need a model in this process: an API replica has one only when
    `REALTIME__ALLOW_IN_KAFKA_MODE` asks for it (loaded at the first session)."""
    if not settings.realtime.allow_in_kafka_mode:
        return None
    backend = registry.transcription(transcription_backend_name(settings))(settings)
    return build_live(settings, backend, own_diarizer(settings, registry), owns_transcriber=True)


async def prepare_worker(settings: Settings) -> KafkaWorker:
    """What `whisperx-api worker` runs: the bucket and topics made sure of, then the worker."""
    await prepare_infrastructure(settings, make_s3_client(settings.s3))
    return build_worker(settings)


def build_worker(settings: Settings, registry: BackendRegistry | None = None) -> KafkaWorker:
    """A worker process: one consumer in the group, the configured pipeline, nothing loaded yet."""
    worker_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    client = make_s3_client(settings.s3)
    kafka = settings.kafka
    private_dir(settings.jobs.data_dir)  # the scratch copies of job audio go under it
    return KafkaWorker(
        worker_id,
        KafkaJobConsumer.from_settings(kafka, client_id=f"whisperx-worker-{worker_id}"),
        KafkaJobProducer.from_settings(kafka, client_id=f"whisperx-worker-{worker_id}"),
        S3JobStore(client, settings.s3.bucket),
        S3BlobStore(client, settings.s3.bucket),
        build_runner(settings, registry or default_registry()),
        settings.jobs.data_dir / "worker" / worker_id,
        WorkerPolicy(
            settings.jobs.max_attempts,
            kafka.lease_seconds,
            grace_seconds=settings.jobs.shutdown_grace_seconds,
            orphan_seconds=kafka.orphan_job_seconds,
            preload=tuple(dict.fromkeys(("transcription", *settings.backends.preload))),
            max_jobs=settings.worker_max_jobs,
        ),
    )


async def prepare_infrastructure(settings: Settings, client: S3Client) -> None:
    """Create the bucket and the topics unless they exist (every replica and worker may race)."""
    await asyncio.to_thread(ensure_bucket, client, settings.s3.bucket)
    kafka = settings.kafka
    await ensure_topics(
        kafka.bootstrap_servers,
        (kafka.request_topic, kafka.dead_letter_topic),
        kafka.partitions,
        replication_factor=kafka.replication_factor,
    )
