"""constraints.txt, the lock `make run` and `make test` install from: it pins every dependency
pyproject.toml names, within its ranges and past the known CVEs, torch without a local label."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
MAKE_EXTRAS = ("bundled", "diarization", "alignment", "distributed", "test")
# Releases that fix: multipart form limits, Starlette's Range DoS, h11 request smuggling, the
# FFmpeg PyAV bundles (CVE-2026-40962), transformers' ReDoS series, idna's quadratic encode.
# name: (first fixed release, the last release before it)
CVE_FLOORS = {
    "starlette": ("0.47.2", "0.47.1"),
    "h11": ("0.16.0", "0.15.0"),
    "python-multipart": ("0.0.18", "0.0.17"),
    "av": ("17.1.0", "17.0.1"),
    "transformers": ("4.53.0", "4.52.4"),
    "idna": ("3.7", "3.6"),
}


def pins() -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line)
        assert match, f"not a plain pin: {line!r}"
        pinned[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pinned


def requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in MAKE_EXTRAS:
        names += project["optional-dependencies"][extra]
    return [Requirement(r) for r in names]


def test_every_dependency_is_pinned_within_its_range() -> None:
    pinned = pins()
    for req in requirements():
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in constraints.txt (run `make lock`)"
        assert req.specifier.contains(pinned[name], prereleases=True), (req, pinned[name])


def test_pins_and_ranges_are_past_the_known_cves() -> None:
    pinned = pins()
    declared = {canonicalize_name(r.name): r.specifier for r in requirements()}
    for name, (fixed, vulnerable) in CVE_FLOORS.items():
        assert pinned[name] >= Version(fixed), name
        assert name in declared, f"pyproject.toml sets no floor for {name}"
        assert not declared[name].contains(vulnerable), f"pyproject.toml admits {name} {vulnerable}"


def test_torch_is_the_pinned_release_without_a_local_build_label() -> None:
    """PyPI has no `+cpu` builds: a label would make the file unusable from a fresh clone."""
    torch = pins()["torch"]
    assert torch == Version("2.13.0")
    assert torch.local is None
    assert "torch==2.13.0" in (REPO / "Makefile").read_text()
