"""The model endpoints' one service: what each pipeline stage holds, and loading or unloading.

Routes call this instead of reaching into the runner; it answers with typed wire models.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import Depends
from pydantic import BaseModel, Field

from whisperx_api.api.deps import RuntimeDep
from whisperx_api.errors import UnsupportedParameter
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import ManagedModels


class Stage(StrEnum):
    """A pipeline stage with models; the value is its route prefix (`/{value}_models/...`)."""

    TRANSCRIPTION = "transcription"
    ALIGNMENT = "align"
    DIARIZATION = "diarize"


class ModelCard(BaseModel):
    """One entry of OpenAI's model list."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="When this server started (Unix seconds).")
    owned_by: str = "whisperx-api"


class ModelList(BaseModel):
    """OpenAI's `GET /v1/models` body."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class LoadedModels(BaseModel):
    """The models a stage holds in memory now."""

    models: list[str]


class TranscriptionModels(LoadedModels):
    """Loaded transcription models, and how often each known model was loaded since start."""

    loads: dict[str, int]


class ModelChanged(BaseModel):
    """A model was loaded or unloaded; `model` is its canonical name."""

    status: Literal["success"] = "success"
    model: str


class ModelService:
    """Model listing and lifecycle over the runner's stages."""

    def __init__(self, runner: PipelineRunner, started_at: int) -> None:
        self._runner = runner
        self._started_at = started_at

    def openai_list(self) -> ModelList:
        """Transcription models this server can serve."""
        transcriber = self._runner.transcriber
        names = sorted({*transcriber.available_models(), *transcriber.loaded_models()})
        return ModelList(data=[ModelCard(id=n, created=self._started_at) for n in names])

    def transcription_models(self) -> TranscriptionModels:
        """Loaded transcription models and load counts."""
        transcriber = self._runner.transcriber
        loaded = transcriber.loaded_models()
        names = sorted({*loaded, *transcriber.available_models()})
        return TranscriptionModels(
            models=loaded, loads={n: transcriber.load_count(n) for n in names}
        )

    def loaded(self, stage: Stage) -> LoadedModels:
        """A stage's loaded models; none when the stage is not configured."""
        backend = self._backend(stage)
        return LoadedModels(models=backend.loaded_models() if backend is not None else [])

    async def load(self, stage: Stage, name: str, param: str) -> ModelChanged:
        """Load `name` now (off the event loop: loading reads and maps the weights)."""
        backend = self._required(stage, param)
        return ModelChanged(model=await asyncio.to_thread(backend.load_model, name))

    async def unload(self, stage: Stage, name: str, param: str) -> ModelChanged:
        """Unload `name`; 409 while a job uses it, 404 when it is not loaded."""
        backend = self._required(stage, param)
        return ModelChanged(model=await asyncio.to_thread(backend.unload_model, name))

    def _backend(self, stage: Stage) -> ManagedModels | None:
        backends: dict[Stage, ManagedModels | None] = {
            Stage.TRANSCRIPTION: self._runner.transcriber,
            Stage.ALIGNMENT: self._runner.aligner,
            Stage.DIARIZATION: self._runner.diarizer,
        }
        return backends[stage]

    def _required(self, stage: Stage, param: str) -> ManagedModels:
        backend = self._backend(stage)
        if backend is None:
            raise UnsupportedParameter(f"No {stage.value} backend is configured.", param=param)
        return backend


def get_model_service(runtime: RuntimeDep) -> ModelService:
    """The service over the app's runtime."""
    return ModelService(runtime.runner, runtime.started_at)


ModelServiceDep = Annotated[ModelService, Depends(get_model_service)]
