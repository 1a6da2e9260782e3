"""Backends are picked by name per stage from settings; unknown names fail at startup."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from whisperx_api.config import Settings
from whisperx_api.errors import ConfigError
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.pipeline.stages.boundary_refiner import EnergyAligner
from whisperx_api.pipeline.stages.pyannote_diarizer import PyannoteDiarizer
from whisperx_api.pipeline.stages.senko_diarizer import SenkoBackend
from whisperx_api.pipeline.stages.wav2vec2_aligner import Wav2Vec2Aligner
from whisperx_api.runtime.embedded import build_runner


@pytest.mark.parametrize(
    ("backends", "aligner", "diarizer"),
    [
        ({}, EnergyAligner, SenkoBackend),
        ({"alignment": "wav2vec2", "diarization": "pyannote"}, Wav2Vec2Aligner, PyannoteDiarizer),
    ],
)
def test_stages_follow_settings(
    make_settings: Callable[..., Settings], backends: dict[str, str], aligner: type, diarizer: type
) -> None:
    runner = build_runner(make_settings(backends=backends), default_registry())
    assert isinstance(runner.aligner, aligner)
    assert isinstance(runner.diarizer, diarizer)
    runner.close()


@pytest.mark.parametrize("stage", ["transcription", "alignment", "diarization"])
def test_unknown_backend_names_the_variable_and_the_choices(
    make_settings: Callable[..., Settings], stage: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_runner(make_settings(backends={stage: "nope"}), default_registry())
    assert f"BACKENDS__{stage.upper()}" in str(info.value)
    assert "known backends" in str(info.value)
