"""Multichannel transcription end to end: a real server process with the bundled base model on a
two-party call recorded one party per channel (`tests/data/conv2_stereo.flac`, made from
`conv2.flac` and its RTTM turns by `tests/data/make_stereo_call.py`).

Each word must land on the channel of the party whose turn it falls in, subtitle cues never mix
channels, a copied or silent channel is skipped with a warning, and mono audio with
`multichannel=true` is answered exactly as without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import srt

from tests.audio import DATA
from tests.server import ServerProcess, serving
from tests.stereo import read_mono, rttm_turns, split_by_speaker, write_channels

pytestmark = pytest.mark.slow

STEREO = DATA / "conv2_stereo.flac"
TURNS = rttm_turns(DATA / "conv2.rttm")
PARTIES = ["alice", "erin"]  # channel 0, channel 1
MIN_RIGHT_CHANNEL = 0.95


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("multichannel")
    env = {
        "WHISPER_TMP_FILES": str(tmp / "data"),
        "WHISPER__CACHE_DIR": str(tmp / "cache"),
        "WHISPER__MODEL": "base",
    }
    with serving(env, tmp / "server.log") as running:
        yield running


def post(server: ServerProcess, path: Path, url: str = "/v1/audio/transcriptions", **fields: Any):
    response = httpx.post(
        f"{server.base_url}{url}",
        files={"file": (path.name, path.read_bytes())},
        data=fields,
        timeout=600,
    )
    assert response.status_code == 200, response.text
    return response


def party_at(start: float, end: float) -> str | None:
    """The party whose turn overlaps [start, end] the most; None outside every turn."""
    best, most = None, 0.0
    for low, high, speaker in TURNS:
        overlap = min(end, high) - max(start, low)
        if overlap > most:
            best, most = speaker, overlap
    if best is None:  # a word timed just outside a turn: the nearest turn
        middle = (start + end) / 2
        best = min(TURNS, key=lambda t: min(abs(middle - t[0]), abs(middle - t[1])))[2]
    return best


WORD_FIELDS = {"response_format": "verbose_json", "timestamp_granularities[]": "word"}


@pytest.fixture(scope="module")
def stereo_words(server: ServerProcess) -> dict[str, Any]:
    """The call's multichannel verbose_json with words, transcribed once for the module."""
    body: dict[str, Any] = post(server, STEREO, multichannel="true", **WORD_FIELDS).json()
    return body


def test_each_word_lands_on_its_partys_channel(stereo_words: dict[str, Any]) -> None:
    body = stereo_words
    words = body["words"]
    right = sum(PARTIES[w["channel"]] == party_at(w["start"], w["end"]) for w in words)
    share = right / len(words)
    print(f"\n{right}/{len(words)} words on the right channel ({share:.1%})")
    assert len(words) > 40
    assert share >= MIN_RIGHT_CHANNEL
    segments = body["segments"]
    assert {s["channel"] for s in segments} == {0, 1}
    assert all(s["speaker"] == f"channel_{s['channel']}" for s in segments)
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)
    assert body["text"] == " ".join(s["text"].strip() for s in segments)
    assert body["warnings"] == []


def test_crosstalk_at_minus_20_db_stays_on_its_own_channel(
    server: ServerProcess, stereo_words: dict[str, Any], tmp_path: Path
) -> None:
    """Each party also heard 20 dB down on the other's channel (two microphones in one room),
    over a -50 dBFS noise floor: the leaked speech is not transcribed twice."""
    _, (alice, erin) = split_by_speaker("conv2")
    rng = np.random.default_rng(7)
    leak, floor = 10 ** (-20 / 20), 10 ** (-50 / 20)
    left = alice + leak * erin + floor * rng.standard_normal(len(alice)).astype(np.float32)
    right = erin + leak * alice + floor * rng.standard_normal(len(erin)).astype(np.float32)
    path = write_channels(tmp_path / "crosstalk.flac", [left, right])
    words = post(server, path, multichannel="true", **WORD_FIELDS).json()["words"]
    clean = stereo_words["words"]
    right_ones = sum(PARTIES[w["channel"]] == party_at(w["start"], w["end"]) for w in words)
    share = right_ones / len(words)
    print(f"\ncrosstalk -20 dB: {right_ones}/{len(words)} words on the right channel ({share:.1%})")
    assert share >= MIN_RIGHT_CHANNEL
    assert len(words) <= 1.1 * len(clean)  # nothing said twice


@pytest.mark.parametrize("url", ["/v1/audio/transcriptions", "/transcription"])
def test_srt_cues_never_mix_channels(server: ServerProcess, url: str) -> None:
    fields = {"multichannel": "true", "channel_names[]": PARTIES, "response_format": "srt"}
    if url == "/transcription":
        fields["sync"] = "true"
    cues = list(srt.parse(post(server, STEREO, url, **fields).text))
    assert len(cues) >= len(TURNS)
    for cue in cues:
        labels = [p for p in PARTIES if f"[{p}]: " in cue.content]
        assert len(labels) == 1, cue.content
        start, end = cue.start.total_seconds(), cue.end.total_seconds()
        # The cue's time belongs to its own party's turns, not the other party's.
        assert party_at(start, end) == labels[0], (cue.content, start, end)


def test_diarized_json_takes_the_channel_as_speaker(server: ServerProcess) -> None:
    body = post(
        server,
        STEREO,
        multichannel="true",
        diarize="true",
        response_format="diarized_json",
        **{"channel_names[]": PARTIES},
    ).json()
    assert {s["speaker"] for s in body["segments"]} == set(PARTIES)
    for segment in body["segments"]:
        assert party_at(segment["start"], segment["end"]) == segment["speaker"], segment


@pytest.mark.parametrize(("copy", "reason"), [(True, "duplicates channel 0"), (False, "is silent")])
def test_a_copied_or_silent_channel_is_skipped_with_a_warning(
    server: ServerProcess, tmp_path: Path, copy: bool, reason: str
) -> None:
    mono = read_mono(DATA / "conv2.flac")
    other = mono.copy() if copy else np.zeros_like(mono)
    path = write_channels(tmp_path / "two.flac", [mono, other])
    body = post(server, path, multichannel="true", response_format="verbose_json").json()
    assert {s["channel"] for s in body["segments"]} == {0}
    (warning,) = body["warnings"]
    assert warning["code"] == "channel_skipped"
    assert f"Channel 1 {reason}" in warning["message"]
    assert len(body["text"].split()) > 40  # the whole conversation, from channel 0


def test_mono_with_multichannel_is_answered_as_today(server: ServerProcess) -> None:
    mono = DATA / "conv2.flac"
    today = post(server, mono, **WORD_FIELDS).json()
    multi = post(server, mono, multichannel="true", **WORD_FIELDS).json()
    assert multi == today
