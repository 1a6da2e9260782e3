"""The version lives in pyproject.toml only: the package, the CLI and the OpenAPI document report
the installed metadata's copy of it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from whisperx_api import __version__
from whisperx_api.api.app import create_app
from whisperx_api.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def declared_version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return str(project["version"])


def test_the_package_reports_the_version_of_pyproject() -> None:
    assert __version__ == declared_version()


def test_whisperx_api_version_prints_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "whisperx_api.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"whisperx-api {declared_version()}"


def test_the_openapi_document_carries_it(tmp_path: Path) -> None:
    settings = Settings(jobs={"data_dir": tmp_path / "data"}, whisper={"cache_dir": tmp_path / "c"})
    assert create_app(settings).openapi()["info"]["version"] == declared_version()


def test_no_second_copy_of_the_version_in_the_sources() -> None:
    version = declared_version()
    copies = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src").rglob("*.py")
        if f'"{version}"' in path.read_text(encoding="utf-8")
    ]
    assert copies == []
