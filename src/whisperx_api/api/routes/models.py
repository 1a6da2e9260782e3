"""Model listing (OpenAI's `/v1/models`) and model management per pipeline stage (docs/api.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from whisperx_api.api.deps import AdminDep, ClientDep
from whisperx_api.api.forms import read_form
from whisperx_api.api.model_service import (
    LoadedModels,
    ModelChanged,
    ModelList,
    ModelServiceDep,
    Stage,
    TranscriptionModels,
)
from whisperx_api.api.openapi import error_responses, form_body
from whisperx_api.api.schemas import AlignModelForm, ModelForm, ModelTargetForm

router = APIRouter(tags=["models"])

_LIST_ERRORS = error_responses(401, 500)
_LOAD_ERRORS = error_responses(400, 401, 403, 413, 500, 503)
_UNLOAD_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 500)


def _body(form: type[ModelTargetForm]) -> dict[str, object]:
    """Load/unload forms come multipart or URL-encoded (curl -d)."""
    return form_body(form, urlencoded=True)


@router.get("/v1/models", responses=_LIST_ERRORS)
async def list_openai_models(models: ModelServiceDep, _: ClientDep) -> ModelList:
    """Transcription models this server can serve, in OpenAI's list shape."""
    return models.openai_list()


@router.get("/models/list", responses=_LIST_ERRORS)
async def list_loaded_models(models: ModelServiceDep, _: ClientDep) -> TranscriptionModels:
    """Transcription models now in memory, and how often each was loaded since start."""
    return models.transcription_models()


@router.post("/models/load", openapi_extra=_body(ModelForm), responses=_LOAD_ERRORS)
async def load_model(request: Request, models: ModelServiceDep, _: AdminDep) -> ModelChanged:
    """Load a transcription model now (admin key); 503 when every slot holds a model in use."""
    name = await _model_name(request, ModelForm)
    return await models.load(Stage.TRANSCRIPTION, name, "model")


@router.post("/models/unload", openapi_extra=_body(ModelForm), responses=_UNLOAD_ERRORS)
async def unload_model(request: Request, models: ModelServiceDep, _: AdminDep) -> ModelChanged:
    """Unload a transcription model; 409 while a job uses it."""
    name = await _model_name(request, ModelForm)
    return await models.unload(Stage.TRANSCRIPTION, name, "model")


def _stage_router(stage: Stage, form: type[ModelTargetForm]) -> APIRouter:
    """List/load/unload routes for the alignment or diarization stage's models."""
    sub = APIRouter()
    param = next(iter(form.model_fields))

    @sub.get(f"/{stage.value}_models/list", responses=_LIST_ERRORS)
    async def list_models(models: ModelServiceDep, _: ClientDep) -> LoadedModels:
        return models.loaded(stage)

    @sub.post(f"/{stage.value}_models/load", openapi_extra=_body(form), responses=_LOAD_ERRORS)
    async def load(request: Request, models: ModelServiceDep, _: AdminDep) -> ModelChanged:
        return await models.load(stage, await _model_name(request, form), param)

    @sub.post(f"/{stage.value}_models/unload", openapi_extra=_body(form), responses=_UNLOAD_ERRORS)
    async def unload(request: Request, models: ModelServiceDep, _: AdminDep) -> ModelChanged:
        return await models.unload(stage, await _model_name(request, form), param)

    return sub


async def _model_name(request: Request, form: type[ModelTargetForm]) -> str:
    async with read_form(request, form) as parsed:
        return parsed.target()


router.include_router(_stage_router(Stage.ALIGNMENT, AlignModelForm))
router.include_router(_stage_router(Stage.DIARIZATION, ModelForm))
