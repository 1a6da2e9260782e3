"""The hub-download gate over the real catalog: local names always pass, hub names need the
right to download (admin, or MODELS__ALLOWED) and a hub that answers; refusals list what is
available and carry no library text. The hub itself is a stand-in here; the real probe is
exercised offline by tests/robustness/test_hub_models.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisperx_api.errors import ModelNotFound, PermissionDenied
from whisperx_api.pipeline.catalog import HUB_MODELS, ModelCatalog
from whisperx_api.pipeline.hub import HubProbe
from whisperx_api.runtime.models import ModelAccess


class StubHub(HubProbe):
    def __init__(self, cached: set[str], online: bool) -> None:
        super().__init__()
        self._cached = cached
        self._online = online
        self.asked: list[str] = []

    def cached(self, name: str) -> bool:
        return name in self._cached

    def _ask(self, name: str) -> bool:
        self.asked.append(name)
        return self._online


def access(tmp_path: Path, hub: StubHub, download: bool = True) -> ModelAccess:
    catalog = ModelCatalog("tiny.en", tmp_path, downloadable=HUB_MODELS, allow_download=download)
    return ModelAccess(catalog, ["small"], hub)


def test_local_names_pass_without_asking_the_hub(tmp_path: Path) -> None:
    hub = StubHub(set(), online=False)
    gate = access(tmp_path, hub)
    for name in ("", "whisper-1", "tiny.en", "base"):
        gate.admit(name, may_download=False)
    assert hub.asked == []


def test_a_cached_hub_model_needs_no_right_and_no_hub(tmp_path: Path) -> None:
    access(tmp_path, StubHub({"large-v3"}, online=False)).admit("large-v3", may_download=False)


def test_an_ordinary_key_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied) as refused:
        access(tmp_path, StubHub(set(), online=True)).admit("large-v3", may_download=False)
    assert refused.value.code == "admin_key_required"
    assert "MODELS__ALLOWED" in refused.value.message
    assert "tiny.en" in refused.value.message


def test_allowed_names_and_admins_download_when_the_hub_answers(tmp_path: Path) -> None:
    hub = StubHub(set(), online=True)
    gate = access(tmp_path, hub)
    gate.admit("small", may_download=False)
    gate.admit("large-v3", may_download=True)
    gate.admit("large-v3", may_download=True)  # remembered: asked once
    assert hub.asked == ["small", "large-v3"]


def test_offline_is_model_not_found_listing_what_is_available(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as missing:
        access(tmp_path, StubHub(set(), online=False)).admit("large-v3", may_download=True)
    assert "cannot be reached" in missing.value.message
    assert "Available models:" in missing.value.message
    assert missing.value.param == "model"


def test_with_downloads_off_a_hub_name_is_simply_unknown(tmp_path: Path) -> None:
    hub = StubHub(set(), online=True)
    with pytest.raises(ModelNotFound) as missing:
        access(tmp_path, hub, download=False).admit("large-v3", may_download=True)
    assert "Available models:" in missing.value.message
    assert hub.asked == []
