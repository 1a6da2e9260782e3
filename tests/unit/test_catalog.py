"""Model names resolve by allow-list: default, models_dir, bundled package, hub name; no paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisperx_api.errors import ModelNotFound
from whisperx_api.pipeline.catalog import BASE_MODEL_BYTES, HUB_MODELS, HUB_REPOS, ModelCatalog


def fake_model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "model.bin").write_bytes(b"x")
    (path / "config.json").write_text("{}")
    return path


def test_bundled_models_and_alias(tmp_path: Path) -> None:
    catalog = ModelCatalog("base", cache_dir=tmp_path)
    assert {"base", "tiny.en"} <= set(catalog.available())
    location = catalog.resolve("whisper-1")
    assert location.name == "base"
    assert location.is_local
    model_bin = Path(location.source) / "model.bin"
    assert model_bin.stat().st_size == BASE_MODEL_BYTES
    assert catalog.resolve("").name == "base"
    assert catalog.resolve("tiny.en").is_local


def test_reassembly_happens_once(tmp_path: Path) -> None:
    catalog = ModelCatalog("base", cache_dir=tmp_path)
    first = Path(catalog.resolve("base").source) / "model.bin"
    mtime = first.stat().st_mtime_ns
    catalog.resolve("base")
    assert first.stat().st_mtime_ns == mtime


def test_models_dir_names_and_a_configured_default_path(tmp_path: Path) -> None:
    own = fake_model_dir(tmp_path / "own")
    models_dir = tmp_path / "models"
    fake_model_dir(models_dir / "custom")
    catalog = ModelCatalog("base", cache_dir=tmp_path / "c", models_dir=models_dir)
    assert catalog.resolve("custom").source == str(models_dir / "custom")
    assert "custom" in catalog.available()
    # The operator may configure the default as a path; requests reach it by name or alias.
    configured = ModelCatalog(str(own), cache_dir=tmp_path / "c", models_dir=models_dir)
    assert configured.resolve("whisper-1").source == str(own)
    assert configured.resolve(str(own)).source == str(own)


@pytest.mark.parametrize(
    "spelling",
    [
        "OWN",  # replaced by the model directory's absolute path
        "/etc",
        "./custom",
        "../models/custom",
        "MODELS//custom",
        "MODELS/./custom",
        "~/custom",
        "custom/",
        "..",
        "a..b",
        "custom\\x",
        "cust\x00om",
        "-custom",
        "x" * 200,
    ],
)
def test_paths_and_path_like_spellings_are_refused_before_any_lookup(
    tmp_path: Path, spelling: str
) -> None:
    own = fake_model_dir(tmp_path / "own")
    models_dir = tmp_path / "models"
    fake_model_dir(models_dir / "custom")
    name = spelling.replace("OWN", str(own)).replace("MODELS", str(models_dir))
    catalog = ModelCatalog("base", cache_dir=tmp_path / "c", models_dir=models_dir)
    with pytest.raises(ModelNotFound) as info:
        catalog.resolve(name)
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"
    with pytest.raises(ModelNotFound):
        catalog.known(name)


def test_equivalent_spellings_share_one_canonical_name(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    fake_model_dir(models_dir / "custom")
    catalog = ModelCatalog("base", cache_dir=tmp_path / "c", models_dir=models_dir)
    assert {catalog.canonical(n) for n in ("", "whisper-1", " base ", "base", None)} == {"base"}
    assert {catalog.resolve(n).name for n in ("custom", " custom", "custom\n")} == {"custom"}


def test_a_models_dir_entry_that_is_not_a_plain_name_is_not_listed(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    fake_model_dir(models_dir / "ok-1.0")
    fake_model_dir(models_dir / ".hidden")
    catalog = ModelCatalog("base", cache_dir=tmp_path / "c", models_dir=models_dir)
    assert "ok-1.0" in catalog.available()
    assert ".hidden" not in catalog.available()


def test_hub_names_only_when_downloads_are_allowed(tmp_path: Path) -> None:
    online = ModelCatalog("base", tmp_path, downloadable=["large-v3"], allow_download=True)
    assert not online.resolve("large-v3").is_local
    offline = ModelCatalog("base", tmp_path, downloadable=["large-v3"], allow_download=False)
    with pytest.raises(ModelNotFound):
        offline.resolve("large-v3")


def test_unknown_name_lists_available(tmp_path: Path) -> None:
    catalog = ModelCatalog("base", cache_dir=tmp_path)
    with pytest.raises(ModelNotFound) as info:
        catalog.resolve("no-such-model")
    assert "base" in info.value.message
    assert "tiny.en" in info.value.message
    assert info.value.param == "model"


def test_known_checks_names_without_materialising_anything(tmp_path: Path) -> None:
    own = fake_model_dir(tmp_path / "own")
    models_dir = tmp_path / "models"
    fake_model_dir(models_dir / "custom")
    cache = tmp_path / "cache"
    catalog = ModelCatalog("base", cache_dir=cache, models_dir=models_dir, downloadable=HUB_MODELS)
    assert catalog.known("whisper-1") == "base"
    assert catalog.known("tiny.en") == "tiny.en"
    with pytest.raises(ModelNotFound):
        catalog.known(str(own))
    assert catalog.known("custom") == "custom"
    assert catalog.known("large-v3") == "large-v3"
    with pytest.raises(ModelNotFound):
        catalog.known("no-such-model")
    assert not cache.exists(), "checking a name must not reassemble the bundled model"
    offline = ModelCatalog("base", cache_dir=cache, downloadable=HUB_MODELS, allow_download=False)
    with pytest.raises(ModelNotFound):
        offline.known("large-v3")


def test_hub_names_and_repositories_are_faster_whispers_own() -> None:
    """The table is copied so that checking a name never imports faster-whisper; it must not
    drift from the library's."""
    from faster_whisper.utils import _MODELS

    assert dict(HUB_REPOS) == _MODELS
