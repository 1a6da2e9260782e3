"""Every stage names its models from an allow-list: no path, no `..`, no client-chosen repository;
one canonical key per model; a device that does not exist is refused before a copy is keyed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from whisperx_api.errors import InvalidRequest, ModelNotFound, NotFound
from whisperx_api.pipeline.catalog import ModelCatalog, language_code, plain_name
from whisperx_api.pipeline.stages.boundary_refiner import EnergyAligner
from whisperx_api.pipeline.stages.pyannote_diarizer import PyannoteDiarizer
from whisperx_api.pipeline.stages.senko_diarizer import SenkoBackend
from whisperx_api.pipeline.stages.wav2vec2_aligner import AlignmentModels, Wav2Vec2Aligner
from whisperx_api.pipeline.stages.whisperx_cli import CommandConfig, WhisperXCommandBackend

TRAVERSALS = ["../../tmp", "..", "/etc", "./en", "en/..", "e\x00n", "~root", "en//", "english"]


@pytest.mark.parametrize("name", ["base", "tiny.en", "large-v3", "distil-large-v3.5", "my_model"])
def test_plain_names_pass(name: str) -> None:
    assert plain_name(f" {name}\t") == name


@pytest.mark.parametrize(
    "name", [*TRAVERSALS[:-1], "", "a/b", "a\\b", "C:model", ".hidden", "x" * 129]
)
def test_anything_else_is_model_not_found(name: str) -> None:
    with pytest.raises(ModelNotFound) as info:
        plain_name(name)
    assert (info.value.code, info.value.param) == ("model_not_found", "model")


def test_language_codes_are_canonical_and_nothing_else_passes() -> None:
    assert {language_code(s) for s in ("en", "EN", " en ", "En\n")} == {"en"}
    assert language_code("yue") == "yue"
    for name in TRAVERSALS:
        with pytest.raises(ModelNotFound) as info:
            language_code(name)
        assert (info.value.code, info.value.param) == ("model_not_found", "language")


def test_the_default_aligner_refuses_a_path_as_a_language() -> None:
    aligner = EnergyAligner()
    assert aligner.load_model("FR") == "fr"
    assert aligner.load_model("") == ""  # preload: the stage's default
    with pytest.raises(ModelNotFound):
        aligner.load_model("../../tmp")
    with pytest.raises(ModelNotFound):
        aligner.unload_model("../../tmp")
    with pytest.raises(NotFound):
        aligner.unload_model("fr")


def test_wav2vec2_looks_only_at_known_codes_under_its_directory(tmp_path: Path) -> None:
    models_dir = tmp_path / "align"
    (models_dir / "en").mkdir(parents=True)
    (models_dir / "en" / "config.json").write_text("{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")  # would pass the directory check
    models = AlignmentModels(models_dir, allow_download=False)
    assert models.resolve("EN").source == str(models_dir / "en")
    for name in ("../outside", str(outside), "en/../../outside"):
        with pytest.raises(ModelNotFound) as info:
            models.resolve(name)
        assert info.value.param == "language"
    with pytest.raises(ModelNotFound) as missing:
        models.resolve("de")  # known code, no model here, downloads off
    assert missing.value.param == "language"


def test_wav2vec2_keys_its_cache_by_the_canonical_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whisperx_api.pipeline.stages import wav2vec2_aligner

    models_dir = tmp_path / "align"
    (models_dir / "en").mkdir(parents=True)
    (models_dir / "en" / "config.json").write_text("{}")
    loads: list[str] = []

    def load(source: wav2vec2_aligner.ModelSource, device: str, token: str | None) -> Any:
        loads.append(source.language)
        return object()

    monkeypatch.setattr(wav2vec2_aligner, "load_ctc_model", load)
    aligner = Wav2Vec2Aligner(AlignmentModels(models_dir, allow_download=False), max_loaded=2)
    assert {aligner.load_model(s) for s in ("en", "EN", " en")} == {"en"}
    assert aligner.loaded_models() == ["en"]
    assert loads == ["en"]
    assert aligner.unload_model("EN") == "en"


def test_pyannote_loads_only_its_configured_pipeline() -> None:
    loaded: list[str] = []

    def loader(model: str, token: str, device: str) -> Any:
        loaded.append(model)
        return object()

    diarizer = PyannoteDiarizer("org/configured", default_token="hf_x", loader=loader)
    for name in ("attacker/pipeline", "org/configured/../x", "/tmp/config.yaml"):
        with pytest.raises(ModelNotFound) as info:
            diarizer.load_model(name)
        assert info.value.param == "model"
        with pytest.raises(ModelNotFound):
            diarizer.unload_model(name)
    assert loaded == [], "a refused name must never reach pyannote"
    assert diarizer.load_model("") == "org/configured"
    assert diarizer.load_model(" org/configured ") == "org/configured"
    assert loaded == ["org/configured"]
    assert diarizer.loaded_models() == ["org/configured"]


def test_senko_knows_one_model() -> None:
    backend = SenkoBackend()
    with pytest.raises(ModelNotFound):
        backend.load_model("../senko")
    with pytest.raises(ModelNotFound):
        backend.unload_model("other")
    assert backend.loaded_models() == []


def test_the_command_backend_passes_names_never_paths(tmp_path: Path) -> None:
    backend = WhisperXCommandBackend(CommandConfig(cmd="whisperx", default_model="base"))
    assert backend.resolve_model("whisper-1") == "base"
    assert backend.resolve_model("large-v3") == "large-v3"
    for name in ("/models/x", "../x", "./base", "a//b"):
        with pytest.raises(ModelNotFound):
            backend.resolve_model(name)


@pytest.mark.slow
def test_faster_whisper_unload_and_device_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctranslate2

    from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

    catalog = ModelCatalog("tiny.en", cache_dir=tmp_path)
    backend = FasterWhisperBackend(catalog, DeviceConfig(device="cpu"), max_loaded=2)
    # Keys of placements, as a machine with two GPUs sees them.
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 2)
    assert backend._cache_key("tiny.en", "cpu", 5) == "tiny.en"
    assert backend._cache_key("tiny.en", "auto", None) == "tiny.en@cuda:0"
    assert backend._cache_key("tiny.en", "cuda", 1) == "tiny.en@cuda:1"
    with pytest.raises(InvalidRequest) as info:
        backend._cache_key("tiny.en", "cuda", 2)
    assert info.value.param == "device"
    for name in ("tiny.en@gpu:0", "tiny.en@cuda:x", "/x@cpu:0", "tiny.en@cuda:99999"):
        with pytest.raises((ModelNotFound, InvalidRequest)):
            backend.unload_model(name)
    with pytest.raises(NotFound):
        backend.unload_model("tiny.en@cuda:1")
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 0)
    with pytest.raises(InvalidRequest):
        backend.check_device("cuda", 0)
    backend.close()
