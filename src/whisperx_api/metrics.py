"""Prometheus series for operators: one registry per process, read on `/metrics`.

Each process counts what it does itself: an API replica counts HTTP requests, submissions and
cancellations and reports the job store's queue; a process that runs jobs (the embedded server,
a Kafka worker) counts outcomes, audio seconds, processing time and model loads. In MODE=distributed
a scraper therefore reads every API replica on `/metrics` and every worker on
`WORKER__METRICS_PORT`, and sums.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger(__name__)

REGISTRY: Final = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

JOB_OUTCOMES: Final = ("completed", "failed", "cancelled", "retried")
WEBHOOK_OUTCOMES: Final = ("delivered", "retried", "failed")

JOBS_SUBMITTED = Counter(
    "whisperx_jobs_submitted", "Jobs accepted by this API process.", registry=REGISTRY
)
JOBS_FINISHED = Counter(
    "whisperx_jobs",
    "Job attempts by outcome: completed, failed (for good), cancelled, retried (put back "
    "after a failed attempt).",
    ["outcome"],
    registry=REGISTRY,
)
JOBS_QUEUED = Gauge(
    "whisperx_jobs_queued",
    "Jobs waiting in the job store (read at scrape time).",
    registry=REGISTRY,
)
JOBS_PROCESSING = Gauge(
    "whisperx_jobs_processing",
    "Jobs being processed by any worker, per the job store (read at scrape time).",
    registry=REGISTRY,
)
JOBS_RUNNING = Gauge(
    "whisperx_jobs_running", "Jobs this process is running right now.", registry=REGISTRY
)
JOBS_PER_BATCH = Histogram(
    "whisperx_batch_jobs",
    "Jobs whose chunks one transcription batch held (above 1: requests decoded together).",
    buckets=(1, 2, 3, 4, 6, 8, 16, 32, 64),
    registry=REGISTRY,
)
AUDIO_SECONDS = Counter(
    "whisperx_audio_seconds_processed",
    "Seconds of audio in the jobs this process completed.",
    registry=REGISTRY,
)
PROCESSING_SECONDS = Histogram(
    "whisperx_job_processing_seconds",
    "Wall time of one job's pipeline run (decode, transcribe, align, diarize).",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
REALTIME_FACTOR = Histogram(
    "whisperx_job_realtime_factor",
    "Processing time divided by audio duration per completed job (below 1 is faster than "
    "real time).",
    buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5),
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "whisperx_http_requests",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "whisperx_http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    registry=REGISTRY,
)
MODEL_LOADS = Counter(
    "whisperx_model_loads", "Models loaded into memory.", ["stage", "model"], registry=REGISTRY
)
MODEL_UNLOADS = Counter(
    "whisperx_model_unloads",
    "Models released (unload request, idle TTL, shutdown).",
    ["stage", "model"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "whisperx_webhook_deliveries",
    "Webhook delivery attempts by outcome.",
    ["outcome"],
    registry=REGISTRY,
)

WEBHOOK_ROUNDS = Counter(
    "whisperx_webhook_rounds",
    "Rounds of the webhook delivery loop (each claims the deliveries that are due).",
    registry=REGISTRY,
)

for _outcome in JOB_OUTCOMES:  # every series present from the start, at zero
    JOBS_FINISHED.labels(outcome=_outcome)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)


def exposition() -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(REGISTRY)


def set_queue(queued: int, processing: int) -> None:
    """The job store's counts, as an API process read them for this scrape."""
    JOBS_QUEUED.set(queued)
    JOBS_PROCESSING.set(processing)


def jobs_in_batch(count: int) -> None:
    """One transcription batch dispatched, holding chunks of `count` jobs."""
    JOBS_PER_BATCH.observe(count)


def job_outcome(outcome: str) -> None:
    """Count one job attempt's end (one of `JOB_OUTCOMES`)."""
    JOBS_FINISHED.labels(outcome=outcome).inc()


@contextmanager
def job_running() -> Iterator[JobTimer]:
    """Around one job's pipeline run: the running gauge, and a timer for `completed`."""
    timer = JobTimer()
    JOBS_RUNNING.inc()
    try:
        yield timer
    finally:
        JOBS_RUNNING.dec()


class JobTimer:
    """Measures one pipeline run; `completed` records its figures."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def completed(self, audio_seconds: float) -> None:
        """A job finished: its outcome, audio seconds, processing time and realtime factor."""
        elapsed = time.perf_counter() - self._started
        job_outcome("completed")
        AUDIO_SECONDS.inc(max(audio_seconds, 0.0))
        PROCESSING_SECONDS.observe(elapsed)
        if audio_seconds > 0:
            REALTIME_FACTOR.observe(elapsed / audio_seconds)


def model_loaded(stage: str, model: str) -> None:
    """Count a model load (a cache miss that read weights)."""
    MODEL_LOADS.labels(stage=stage, model=model or "default").inc()


def model_unloaded(stage: str, model: str) -> None:
    """Count a model released from memory."""
    MODEL_UNLOADS.labels(stage=stage, model=model or "default").inc()


def serve_worker_metrics(host: str, port: int) -> None:
    """A small HTTP server in a background thread answering scrapes (Kafka workers)."""
    start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics on http://%s:%d/metrics", host, port)
