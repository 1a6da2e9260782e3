"""The model service: typed listings and lifecycle per stage, over a runner with fake stages."""

from __future__ import annotations

import pytest

from tests.fakes import FakeDiarizer, FakeTranscriber
from whisperx_api.api.model_service import ModelService, Stage
from whisperx_api.errors import NotFound, UnsupportedParameter
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.runtime.models import RuntimeModels

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def service(diarizer: FakeDiarizer | None = None) -> ModelService:
    runner = PipelineRunner(FakeTranscriber(), max_audio_seconds=60, diarizer=diarizer)
    return ModelService(RuntimeModels(runner), started_at=1700000000)


async def test_transcription_models_are_listed_and_counted() -> None:
    models = service()
    changed = await models.load(Stage.TRANSCRIPTION, "whisper-1", "model")
    listing = models.openai_list()
    loaded = models.transcription_models()
    assert changed.model_dump() == {"status": "success", "model": "base"}
    assert [card.id for card in listing.data] == ["base", "tiny.en", "whisper-1"]
    assert {card.created for card in listing.data} == {1700000000}
    assert listing.model_dump()["object"] == "list"
    assert loaded.models == ["base"]
    assert loaded.loads == {"base": 1, "tiny.en": 0}


async def test_each_stage_is_its_own_backend() -> None:
    models = service(FakeDiarizer())
    await models.load(Stage.DIARIZATION, "fake", "model")
    assert models.loaded(Stage.DIARIZATION).models == ["fake"]
    assert models.loaded(Stage.TRANSCRIPTION).models == []
    await models.unload(Stage.DIARIZATION, "fake", "model")
    with pytest.raises(NotFound):
        await models.unload(Stage.DIARIZATION, "fake", "model")


async def test_a_stage_that_is_not_configured() -> None:
    models = service()
    assert models.loaded(Stage.ALIGNMENT).models == []
    with pytest.raises(UnsupportedParameter) as refused:
        await models.load(Stage.ALIGNMENT, "en", "language")
    assert refused.value.param == "language"
    assert "No align backend is configured." in refused.value.message
