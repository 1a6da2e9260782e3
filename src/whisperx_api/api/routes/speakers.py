"""Saved voices per API key: `/v1/speakers` enrol, list, read, delete one or all."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from whisperx_api.api.audio_source import audio_source
from whisperx_api.api.deps import ClientDep, RuntimeDep
from whisperx_api.api.forms import read_form
from whisperx_api.api.openapi import error_responses, form_body
from whisperx_api.api.speaker_schemas import (
    SpeakerDeleted,
    SpeakerForm,
    SpeakerList,
    SpeakersDeleted,
    SpeakerView,
)
from whisperx_api.errors import UnsupportedParameter
from whisperx_api.runtime.base import Runtime
from whisperx_api.voices.service import VoiceService

router = APIRouter(tags=["speakers"])


def saved_voices(runtime: Runtime) -> VoiceService:
    """The runtime's voice registry; a runtime without one refuses saved-voice requests."""
    if runtime.voices is None:
        raise UnsupportedParameter("Saved voices are not available on this server.")
    return runtime.voices


@router.post(
    "/v1/speakers",
    status_code=201,
    response_model=SpeakerView,
    openapi_extra=form_body(SpeakerForm),
    responses=error_responses(400, 401, 404, 409, 413, 500),
)
async def create_speaker(request: Request, runtime: RuntimeDep, client: ClientDep) -> JSONResponse:
    """Save a voice: from 2-30 s of audio (`file` or `audio_url`), or a finished job's speaker."""
    voices = saved_voices(runtime)
    async with read_form(request, SpeakerForm) as form:
        from_job = form.job_speaker()
        if from_job is not None:
            job_id, speaker = from_job
            voice = await voices.enrol_job_speaker(client.owner, form.name, job_id, speaker)
        else:
            settings = request.app.state.settings
            async with audio_source(runtime, settings, form.file, form.audio_url) as audio:
                voice = await voices.enrol_clip(client.owner, form.name, audio)
    return JSONResponse(SpeakerView.of(voice).model_dump(), status_code=201)


@router.get("/v1/speakers", response_model=SpeakerList, responses=error_responses(401, 500))
async def list_speakers(runtime: RuntimeDep, client: ClientDep) -> SpeakerList:
    """This key's saved voices, oldest first."""
    voices = await saved_voices(runtime).list(client.owner)
    return SpeakerList(data=[SpeakerView.of(v) for v in voices])


@router.delete("/v1/speakers", response_model=SpeakersDeleted, responses=error_responses(401, 500))
async def delete_speakers(runtime: RuntimeDep, client: ClientDep) -> SpeakersDeleted:
    """Forget every saved voice of this key (jobs already submitted keep their copies)."""
    ids = await saved_voices(runtime).delete_all(client.owner)
    return SpeakersDeleted(data=[SpeakerDeleted(id=voice_id) for voice_id in ids])


@router.get(
    "/v1/speakers/{speaker_id}",
    response_model=SpeakerView,
    responses=error_responses(401, 404, 500),
)
async def get_speaker(speaker_id: str, runtime: RuntimeDep, client: ClientDep) -> SpeakerView:
    """One saved voice of this key (another key's id is 404)."""
    return SpeakerView.of(await saved_voices(runtime).get(client.owner, speaker_id))


@router.delete(
    "/v1/speakers/{speaker_id}",
    response_model=SpeakerDeleted,
    responses=error_responses(401, 404, 500),
)
async def delete_speaker(speaker_id: str, runtime: RuntimeDep, client: ClientDep) -> SpeakerDeleted:
    """Forget a saved voice; jobs already submitted with it keep their copy of the embedding."""
    await saved_voices(runtime).delete(client.owner, speaker_id)
    return SpeakerDeleted(id=speaker_id)
