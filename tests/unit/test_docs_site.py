"""The documentation site: `mkdocs build --strict` passes (a broken link, a missing anchor or a
page left out of the nav fails it), every feature has its page in the built site, every figure
on the performance page names the command that printed it and a date, and the generated endpoint
reference lists every operation of the server's `/openapi.json`."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from whisperx_api.api.app import create_app
from whisperx_api.config import Settings

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "post", "put", "patch", "delete", "options", "head")

# feature: (its page in the built site, words the page must say about it)
FEATURES = {
    "getting started": ("getting-started", ("make run", "A first request")),
    "transcription & formats": ("transcription", ("verbose_json", "stream=true")),
    "subtitles": ("subtitles", ("max_line_width", "highlight_words")),
    "speakers & saved voices": ("speakers", ("diarize=true", "known_speaker_references[]")),
    "word timings": ("word-timings", ("timestamp_granularities[]=word", "wav2vec2")),
    "live captions": ("live-captions", ("/v1/realtime", "whisperx-api live")),
    "jobs": ("jobs", ("POST /transcription", "queue_position")),
    "webhooks": ("webhooks", ("webhook_url", "webhook-signature")),
    "audio by URL": ("audio-url", ("audio_url", "url_not_allowed")),
    "languages & clean-up": ("languages", ("language", "hotwords")),
    "web page": ("web-page", ("Content-Security-Policy", "Transcribe")),
    "configuration reference": ("configuration", ("WHISPER__MODEL", "whisper_api.conf")),
    "security model": ("security", ("refusing to listen", "admin key")),
    "metrics": ("metrics", ("GET /metrics", "whisperx_jobs_total")),
    "Docker Compose": ("docker-compose", ("docker compose --profile cpu", "compose-kafka.yaml")),
    "distributed mode": ("distributed", ("MODE=kafka", "whisperx-api worker")),
    "GPU": ("gpu", ("WHISPER__INFERENCE_DEVICE", "float16")),
    "performance": ("performance", ("bench/throughput.py", "2 CPU cores")),
    "API reference": ("reference/endpoints", ("POST /v1/audio/transcriptions",)),
    "command line": ("cli", ("whisperx-api --version",)),
    "changelog": ("changelog", ("Keep a Changelog", "Unreleased")),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def page_text(site: Path, page: str) -> str:
    """What a reader sees: the page's HTML without tags, entities decoded, spaces collapsed."""
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    article = raw[raw.index("<article") : raw.index("</article>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", article)).split())


@pytest.mark.parametrize("feature", FEATURES)
def test_the_site_has_a_page_for_every_feature(site: Path, feature: str) -> None:
    page, words = FEATURES[feature]
    text = page_text(site, page)
    assert [word for word in words if word not in text] == []
    home = (site / "index.html").read_text(encoding="utf-8")
    assert f'href="{page}/"' in home, f"{page} is not in the navigation"


def test_every_performance_figure_names_its_command_and_date() -> None:
    rows = [
        line
        for line in (ROOT / "docs" / "performance.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith(("| what ", "|---"))
    ]
    assert len(rows) >= 15
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert len(cells) == 4, row
        commands = re.findall(r"`((?:bench|tests)/[\w/.-]+)", cells[2])
        assert commands, f"no command: {row}"
        assert all((ROOT / command).is_file() for command in commands), row
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \([0-9a-f]{7}\)", cells[3]), row


def openapi_operations(tmp_path: Path) -> list[tuple[str, str]]:
    settings = Settings(jobs={"data_dir": tmp_path / "data"}, whisper={"cache_dir": tmp_path / "c"})
    schema: dict[str, Any] = create_app(settings).openapi()
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    ]


def test_the_endpoint_reference_lists_every_operation_of_openapi_json(
    site: Path, tmp_path: Path
) -> None:
    operations = openapi_operations(tmp_path)
    assert ("POST", "/v1/audio/transcriptions") in operations
    assert ("GET", "/transcription/{job_id}") in operations
    text = page_text(site, "reference/endpoints")
    assert [op for op in operations if f"{op[0]} {op[1]}" not in text] == []


def test_the_endpoint_reference_shows_each_form_field(site: Path) -> None:
    text = page_text(site, "reference/endpoints")
    for field in ("response_format", "known_speaker_references", "webhook_url", "audio_url"):
        assert field in text
    served = (site / "reference" / "openapi.json").read_text(encoding="utf-8")
    assert '"/v1/audio/transcriptions"' in served
