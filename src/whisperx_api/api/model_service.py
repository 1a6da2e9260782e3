"""The model endpoints' one service: what each pipeline stage holds, and loading or unloading.

Routes call this instead of reaching into the runtime; it answers with typed wire models over
the runtime's model service (`runtime.models`), so the HTTP layer never touches a stage.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import Depends
from pydantic import BaseModel, Field

from whisperx_api.api.deps import RuntimeDep
from whisperx_api.errors import UnsupportedParameter
from whisperx_api.runtime.models import RuntimeModels, StageName


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


_STAGE_NAMES: dict[Stage, StageName] = {
    Stage.TRANSCRIPTION: "transcription",
    Stage.ALIGNMENT: "alignment",
    Stage.DIARIZATION: "diarization",
}


class ModelService:
    """Model listing and lifecycle over the runtime's stages."""

    def __init__(self, models: RuntimeModels, started_at: int) -> None:
        self._models = models
        self._started_at = started_at

    def openai_list(self) -> ModelList:
        """Transcription models this server can serve, `whisper-1` (the default) included."""
        names = self._models.served()
        return ModelList(data=[ModelCard(id=n, created=self._started_at) for n in names])

    def transcription_models(self) -> TranscriptionModels:
        """Loaded transcription models and load counts."""
        return TranscriptionModels(
            models=self._models.loaded("transcription"), loads=self._models.load_counts()
        )

    def loaded(self, stage: Stage) -> LoadedModels:
        """A stage's loaded models; none when the stage is not configured."""
        return LoadedModels(models=self._models.loaded(_STAGE_NAMES[stage]))

    async def load(self, stage: Stage, name: str, param: str) -> ModelChanged:
        """Load `name` now (off the event loop: loading reads and maps the weights)."""
        self._require(stage, param)
        model = await asyncio.to_thread(self._models.load, _STAGE_NAMES[stage], name, param)
        return ModelChanged(model=model)

    async def unload(self, stage: Stage, name: str, param: str) -> ModelChanged:
        """Unload `name`; 409 while a job uses it, 404 when it is not loaded."""
        self._require(stage, param)
        model = await asyncio.to_thread(self._models.unload, _STAGE_NAMES[stage], name, param)
        return ModelChanged(model=model)

    def _require(self, stage: Stage, param: str) -> None:
        if not self._models.configured(_STAGE_NAMES[stage]):
            raise UnsupportedParameter(f"No {stage.value} backend is configured.", param=param)


def get_model_service(runtime: RuntimeDep) -> ModelService:
    """The service over the app's runtime."""
    return ModelService(runtime.models, runtime.started_at)


ModelServiceDep = Annotated[ModelService, Depends(get_model_service)]
