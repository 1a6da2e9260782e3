"""The job API (docs/jobs.md): submit, poll, fetch once, cancel, and the server's status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from whisperx_api.api.audio_source import audio_source
from whisperx_api.api.cors import ALLOWED_HEADERS, MAX_AGE_SECONDS
from whisperx_api.api.delivery import send_once
from whisperx_api.api.deps import ClientDep, RuntimeDep, admit_model
from whisperx_api.api.forms import read_form
from whisperx_api.api.openapi import error_responses, form_body, transcript_responses
from whisperx_api.api.schemas import (
    JobAccepted,
    JobCancelledView,
    JobForm,
    JobStatusView,
    WebhookView,
)
from whisperx_api.config import Settings
from whisperx_api.domain.job import JobStatus
from whisperx_api.jobs.webhooks import admit_webhook_url

router = APIRouter(tags=["jobs"])

ALLOWED_METHODS = "OPTIONS, POST, GET, DELETE"


@router.options("/transcription", responses={200: {"description": "The resource's methods."}})
async def transcription_options() -> Response:
    """Describe the resource; never authenticated. The CORS middleware adds
    `Access-Control-Allow-Origin` for allowed origins (and answers browser preflights itself)."""
    headers = {
        "Allow": ALLOWED_METHODS,
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
    }
    return Response(status_code=200, headers=headers)


@router.post(
    "/transcription",
    openapi_extra=form_body(JobForm),
    responses={
        **transcript_responses(streams=False),
        **error_responses(400, 401, 409, 413, 500, 503, 504, 507),
    },
)
async def submit_transcription(
    request: Request, runtime: RuntimeDep, client: ClientDep
) -> Response:
    """Queue a job (202), or with `sync=true` wait and answer with the result."""
    settings: Settings = request.app.state.settings
    async with read_form(request, JobForm) as form:
        spec = form.to_spec(client.owner, settings.jobs.output_format)
        await admit_model(request, runtime, client, spec.options.model)
        if spec.webhook_url is not None:
            await admit_webhook_url(spec.webhook_url, settings)
        async with audio_source(runtime, settings, form.file, form.audio_url) as audio:
            record = await runtime.jobs.submit(spec, audio)
    if not form.wants_sync(settings.jobs.default_sync_mode):
        accepted = JobAccepted(job_id=record.id, status_url=f"/transcription/{record.id}")
        return JSONResponse(accepted.model_dump(), 202)
    taken = await runtime.jobs.wait_for_result(
        record, runtime.sync_timeout, request.is_disconnected
    )
    return await send_once(runtime.jobs, taken)


@router.get(
    "/transcription/{job_id}",
    response_model=JobStatusView,
    response_model_exclude_unset=True,
    responses=error_responses(401, 404, 500),
)
async def job_status(job_id: str, runtime: RuntimeDep, client: ClientDep) -> JobStatusView:
    """Status, queue position while queued, progress while processing, error when failed, and
    the webhook's delivery when the job has one (fields that do not apply are left out)."""
    view = await runtime.jobs.status(job_id, client.owner)
    record = view.record
    shown: dict[str, Any] = {"job_id": record.id, "status": record.status.value}
    if view.queue_position is not None:
        shown["queue_position"] = view.queue_position
    if record.status is JobStatus.PROCESSING:
        shown["progress"] = round(record.progress or 0.0, 3)
    if record.status is JobStatus.FAILED:
        shown["error"] = record.error
    shown["attempts"] = record.attempts
    if record.spec.webhook_url is not None:
        delivery = record.webhook
        shown["webhook"] = (
            WebhookView.model_validate(delivery.public())
            if delivery is not None
            else WebhookView(attempts=0, last_status=None, delivered=False)
        )
    return JobStatusView(**shown)


@router.get(
    "/transcription/{job_id}/result",
    responses={
        200: transcript_responses(streams=False)[200],
        **error_responses(400, 401, 404, 409, 500),
    },
)
async def job_result(job_id: str, runtime: RuntimeDep, client: ClientDep) -> Response:
    """The transcript in the job's format, to one fetch only (any other gets 404); the job and
    its files are deleted once it is sent."""
    taken = await runtime.jobs.take_result(job_id, client.owner)
    return await send_once(runtime.jobs, taken)


@router.delete(
    "/transcription/{job_id}",
    response_model=JobCancelledView,
    responses=error_responses(401, 404, 409, 500),
)
async def cancel_job(job_id: str, runtime: RuntimeDep, client: ClientDep) -> JobCancelledView:
    """Cancel a queued job and delete its files."""
    await runtime.jobs.cancel(job_id, client.owner)
    return JobCancelledView(success=True, message="Job canceled successfully")


@router.get("/status", responses=error_responses(401, 500))
async def server_status(request: Request, runtime: RuntimeDep, _: ClientDep) -> dict[str, Any]:
    """Configuration snapshot and live queue counts (docs/api.md, "Health and status")."""
    settings: Settings = request.app.state.settings
    body = status_snapshot(settings)
    try:
        counts = await runtime.jobs.counts()
    except Exception:
        body["queue_state"] = None
        body["error"] = "the job store could not be read"
        return body
    body["queue_state"] = {"queued_jobs": counts.queued, "processing_jobs": counts.processing}
    return body


def status_snapshot(settings: Settings) -> dict[str, Any]:
    """The static part of `/status`."""
    jobs, server = settings.jobs, settings.server
    return {
        "server": {
            "host": server.host,
            "port": server.port,
            "timeout": server.timeout,
            "keepalive": server.keepalive,
            "worker_number": max(server.worker_number, 1),
        },
        "processing": {
            "concurrent_mode": jobs.enable_concurrency,
            "max_concurrent_jobs": settings.worker_count,
            "device": settings.whisper.inference_device,
            "device_index": settings.whisper.device_index,
            "default_output_format": jobs.output_format,
            "default_sync_mode": jobs.default_sync_mode,
            "sync_timeout": jobs.sync_timeout_seconds,
        },
        "resources": {
            "max_file_size": settings.limits.max_file_size,
            "job_retention_hours": jobs.retention_hours,
            "cleanup_interval_hours": jobs.cleanup_interval_hours,
        },
        "security": {"authorization_enabled": settings.auth_enabled},
        "queue_state": None,
        "error": None,
    }
