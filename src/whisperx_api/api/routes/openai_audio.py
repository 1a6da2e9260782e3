"""OpenAI's `/v1/audio/transcriptions` and `/v1/audio/translations`: submit, then wait
(or stream the text as it is decoded)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from whisperx_api.api.audio_source import audio_source
from whisperx_api.api.auth import Client
from whisperx_api.api.delivery import send_once
from whisperx_api.api.deps import ClientDep, RuntimeDep, admit_model
from whisperx_api.api.forms import read_form
from whisperx_api.api.openapi import error_responses, form_body, transcript_responses
from whisperx_api.api.routes.speakers import saved_voices
from whisperx_api.api.schemas import AudioForm, JobAccepted, TranscriptionForm, TranslationForm
from whisperx_api.api.streaming import text_event_stream
from whisperx_api.jobs.webhooks import admit_webhook_url

router = APIRouter(tags=["openai"])

_RESPONSES = {
    **transcript_responses(streams=True),
    **error_responses(400, 401, 409, 413, 500, 503, 504, 507),
}


@router.post(
    "/v1/audio/transcriptions",
    openapi_extra=form_body(TranscriptionForm),
    responses=_RESPONSES,
)
async def create_transcription(
    request: Request, runtime: RuntimeDep, client: ClientDep
) -> Response:
    """Transcribe audio in its own language."""
    return await _submit_and_answer(request, runtime, client, TranscriptionForm)


@router.post(
    "/v1/audio/translations",
    openapi_extra=form_body(TranslationForm),
    responses=_RESPONSES,
)
async def create_translation(request: Request, runtime: RuntimeDep, client: ClientDep) -> Response:
    """Translate audio into English text."""
    return await _submit_and_answer(request, runtime, client, TranslationForm)


async def _submit_and_answer(
    request: Request,
    runtime: RuntimeDep,
    client: Client,
    form_type: type[AudioForm],
) -> Response:
    async with read_form(request, form_type) as form:
        spec = form.to_spec(client.owner)
        if form.speaker_ids():
            spec = await saved_voices(runtime).with_voices(spec, form.speaker_ids())
        await admit_model(request, runtime, client, spec.options.model)
        settings = request.app.state.settings
        if spec.webhook_url is not None:
            await admit_webhook_url(spec.webhook_url, settings)
        spec = await form.with_voices(spec, runtime.clips)
        async with audio_source(runtime, settings, form.file, form.audio_url) as audio:
            record = await runtime.jobs.submit(spec, audio)
    if form.stream:
        return text_event_stream(
            runtime.jobs, record, runtime.sync_timeout, request.is_disconnected
        )
    if form.is_async:
        accepted = JobAccepted(job_id=record.id, status_url=f"/transcription/{record.id}")
        return JSONResponse(accepted.model_dump(), status_code=202)
    taken = await runtime.jobs.wait_for_result(
        record, runtime.sync_timeout, request.is_disconnected
    )
    return await send_once(runtime.jobs, taken)
