"""Model listing (OpenAI's `/v1/models`) and the model management endpoints (docs/api.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from whisperx_api.api.deps import ClientDep, RuntimeDep, multipart_form
from whisperx_api.errors import InvalidRequest, UnsupportedParameter
from whisperx_api.pipeline.stage import ManagedModels
from whisperx_api.runtime.base import Runtime

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_openai_models(runtime: RuntimeDep, _: ClientDep) -> dict[str, Any]:
    """Transcription models this server can serve, in OpenAI's list shape."""
    transcriber = runtime.runner.transcriber
    names = sorted({*transcriber.available_models(), *transcriber.loaded_models()})
    return {
        "object": "list",
        "data": [
            {"id": n, "object": "model", "created": runtime.started_at, "owned_by": "whisperx-api"}
            for n in names
        ],
    }


@router.get("/models/list")
async def list_loaded_models(runtime: RuntimeDep, _: ClientDep) -> dict[str, Any]:
    """Transcription models now in memory, and how often each was loaded since start."""
    transcriber = runtime.runner.transcriber
    loaded = transcriber.loaded_models()
    names = sorted({*loaded, *transcriber.available_models()})
    return {"models": loaded, "loads": {n: transcriber.load_count(n) for n in names}}


@router.post("/models/load")
async def load_model(request: Request, runtime: RuntimeDep, _: ClientDep) -> dict[str, str]:
    """Load a transcription model now."""
    name = await _form_value(request, "model")
    loaded = await asyncio.to_thread(runtime.runner.transcriber.load_model, name)
    return {"status": "success", "model": loaded}


@router.post("/models/unload")
async def unload_model(request: Request, runtime: RuntimeDep, _: ClientDep) -> dict[str, str]:
    """Unload a transcription model; 409 while a job uses it."""
    name = await _form_value(request, "model")
    unloaded = await asyncio.to_thread(runtime.runner.transcriber.unload_model, name)
    return {"status": "success", "model": unloaded}


def _stage_router(what: str, attribute: str, field: str) -> APIRouter:
    """List/load/unload routes for the alignment or diarization stage's models."""
    sub = APIRouter()

    def managed(runtime: Runtime) -> ManagedModels | None:
        stage: ManagedModels | None = getattr(runtime.runner, attribute)
        return stage

    def required(runtime: Runtime) -> ManagedModels:
        stage = managed(runtime)
        if stage is None:
            raise UnsupportedParameter(f"No {what} backend is configured.", param=field)
        return stage

    @sub.get(f"/{what}_models/list")
    async def list_models(runtime: RuntimeDep, _: ClientDep) -> dict[str, list[str]]:
        stage = managed(runtime)
        return {"models": stage.loaded_models() if stage is not None else []}

    @sub.post(f"/{what}_models/load")
    async def load(request: Request, runtime: RuntimeDep, _: ClientDep) -> dict[str, str]:
        name = await _form_value(request, field)
        loaded = await asyncio.to_thread(required(runtime).load_model, name)
        return {"status": "success", "model": loaded}

    @sub.post(f"/{what}_models/unload")
    async def unload(request: Request, runtime: RuntimeDep, _: ClientDep) -> dict[str, str]:
        name = await _form_value(request, field)
        unloaded = await asyncio.to_thread(required(runtime).unload_model, name)
        return {"status": "success", "model": unloaded}

    return sub


router.include_router(_stage_router("align", "aligner", "language"))
router.include_router(_stage_router("diarize", "diarizer", "model"))


async def _form_value(request: Request, field: str) -> str:
    async with multipart_form(request) as form:
        value = form.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"Missing required parameter: '{field}'.", param=field)
    return value.strip()
