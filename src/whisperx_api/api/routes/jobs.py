"""The job API (docs/jobs.md): submit, poll, fetch once, cancel, and the server's status."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from whisperx_api.api.audio_source import audio_source
from whisperx_api.api.delivery import DeliveredResponse
from whisperx_api.api.deps import ClientDep, RuntimeDep, multipart_form
from whisperx_api.api.responses import transcript_response
from whisperx_api.api.schemas import JobAccepted, JobForm, parse_form
from whisperx_api.config import Settings
from whisperx_api.domain.job import JobStatus
from whisperx_api.jobs.webhooks import admit_webhook_url

router = APIRouter(tags=["jobs"])

ALLOWED_METHODS = "OPTIONS, POST, GET, DELETE"


@router.options("/transcription")
async def transcription_preflight(request: Request) -> Response:
    """Describe the resource; CORS headers for allowed origins. Never authenticated."""
    headers = {
        "Allow": ALLOWED_METHODS,
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": "86400",
    }
    headers.update(cors_headers(request))
    return Response(status_code=200, headers=headers)


def cors_headers(request: Request) -> dict[str, str]:
    """`Access-Control-Allow-Origin` for an origin on the allow-list, nothing otherwise."""
    origin = request.headers.get("origin")
    allowed: list[str] = request.app.state.settings.server.cors_origins
    if origin and ("*" in allowed or origin in allowed):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


@router.post("/transcription")
async def submit_transcription(
    request: Request, runtime: RuntimeDep, client: ClientDep
) -> Response:
    """Queue a job (202), or with `sync=true` wait and answer with the result."""
    settings: Settings = request.app.state.settings
    async with multipart_form(request) as raw:
        form = parse_form(JobForm, raw)
        spec = form.to_spec(client.owner, settings.jobs.output_format)
        if spec.webhook_url is not None:
            await admit_webhook_url(spec.webhook_url, settings)
        async with audio_source(runtime, settings, form.file, form.audio_url) as audio:
            record = await runtime.jobs.submit(spec, audio)
    if not form.wants_sync(settings.jobs.default_sync_mode):
        accepted = JobAccepted(job_id=record.id, status_url=f"/transcription/{record.id}")
        return JSONResponse(accepted.model_dump(), 202, headers=cors_headers(request))
    done, transcript = await runtime.jobs.wait_for_result(
        record, runtime.sync_timeout, request.is_disconnected
    )
    response = transcript_response(transcript, done.spec)
    response.headers.update(cors_headers(request))
    return DeliveredResponse(response, partial(runtime.jobs.release_result, done.id))


@router.get("/transcription/{job_id}")
async def job_status(
    job_id: str, request: Request, runtime: RuntimeDep, client: ClientDep
) -> JSONResponse:
    """Status, queue position while queued, progress while processing, error when failed."""
    view = await runtime.jobs.status(job_id, client.owner)
    record = view.record
    body: dict[str, Any] = {"job_id": record.id, "status": record.status.value}
    if view.queue_position is not None:
        body["queue_position"] = view.queue_position
    if record.status is JobStatus.PROCESSING:
        body["progress"] = round(record.progress or 0.0, 3)
    if record.status is JobStatus.FAILED:
        body["error"] = record.error
    body["attempts"] = record.attempts
    if record.spec.webhook_url is not None:
        body["webhook"] = (
            record.webhook.public()
            if record.webhook is not None
            else {"attempts": 0, "last_status": None, "delivered": False}
        )
    return JSONResponse(body, headers=cors_headers(request))


@router.get("/transcription/{job_id}/result")
async def job_result(
    job_id: str, request: Request, runtime: RuntimeDep, client: ClientDep
) -> Response:
    """The transcript in the job's format; the job and its files are deleted once it is sent."""
    record, transcript = await runtime.jobs.read_result(job_id, client.owner)
    response = transcript_response(transcript, record.spec)
    response.headers.update(cors_headers(request))
    return DeliveredResponse(response, partial(runtime.jobs.release_result, record.id))


@router.delete("/transcription/{job_id}")
async def cancel_job(
    job_id: str, request: Request, runtime: RuntimeDep, client: ClientDep
) -> JSONResponse:
    """Cancel a queued job and delete its files."""
    await runtime.jobs.cancel(job_id, client.owner)
    return JSONResponse(
        {"success": True, "message": "Job canceled successfully"}, headers=cors_headers(request)
    )


@router.get("/status")
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
            "port": str(server.port),
            "timeout": server.timeout,
            "keepalive": server.keepalive,
            "worker_number": max(server.worker_number, 1),
        },
        "processing": {
            "concurrent_mode": jobs.enable_concurrency,
            "max_concurrent_jobs": settings.worker_count,
            "device": settings.whisper.inference_device,
            "device_index": str(settings.whisper.device_index),
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
