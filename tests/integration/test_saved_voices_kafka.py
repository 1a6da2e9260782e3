"""Saved voices in `MODE=distributed` (Tansu + moto): the API replica embeds the enrolment clip
itself and keeps only the embedding in S3; the worker names the speakers from the embeddings the
job carries; another key can neither see nor use the voices."""

from __future__ import annotations

import httpx
import pytest

from tests.distributed_stack import KEY, Stack
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint
from tests.saved_voices import CLIP_SECONDS, enrol, identification_error, transcribe, voice_clip
from tests.shared_stack import OTHER_KEY, shared_stack
from whisperx_api.config import S3Settings
from whisperx_api.distributed.s3 import list_keys, make_s3_client

__all__ = ["kafka_bootstrap", "s3_endpoint", "shared_stack"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.slow

OWNER = {"Authorization": f"Bearer {KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}
MAX_IDENTIFICATION_ERROR = 0.15


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    """The session's shared deployment (tests/shared_stack.py): `OTHER_KEY` is another tenant."""
    return shared_stack


def test_voices_saved_in_s3_name_speakers_on_the_worker(stack: Stack, s3_endpoint: str) -> None:
    base_url = stack.apis[0].base_url
    client = make_s3_client(
        S3Settings(endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test")
    )
    bucket = stack.env["S3__BUCKET"]
    before = set(list_keys(client, bucket, "voices/"))  # the deployment is the session's
    voices, used = {}, []
    for voice in ("alice", "erin"):
        clip, turns = voice_clip("conv2", voice)
        saved = enrol(base_url, voice, clip, OWNER)
        assert saved["seconds"] == pytest.approx(CLIP_SECONDS, abs=0.05)
        voices[voice] = saved["id"]
        used += turns

    stored = [k for k in list_keys(client, bucket, "voices/") if k not in before]
    assert sorted(k.rsplit("/", 1)[1] for k in stored) == sorted(
        f"{v}.json" for v in voices.values()
    )
    for key in stored:  # an embedding and a name: a few kB, never 5 s of audio (160 kB)
        assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] < 16_000

    named = transcribe(base_url, list(voices.values()), OWNER)
    assert named.status_code == 200, named.text
    body = named.json()
    everything = identification_error(body, excluded=[])
    held_out = identification_error(body, excluded=used)
    print(
        f"MODE=distributed, conv2: identification error {everything:.3f} (all speech), "
        f"{held_out:.3f} (turns not in the clips)"
    )
    assert {s["speaker"] for s in body["segments"]} == {"alice", "erin"}
    assert everything <= MAX_IDENTIFICATION_ERROR
    assert held_out <= MAX_IDENTIFICATION_ERROR

    for voice_id in voices.values():
        seen = httpx.get(f"{base_url}/v1/speakers/{voice_id}", headers=OTHER, timeout=30)
        assert seen.status_code == 404, seen.text
    used_by_other = transcribe(base_url, list(voices.values()), OTHER)
    assert used_by_other.status_code == 400, used_by_other.text
    assert used_by_other.json()["error"]["param"] == "known_speaker_ids"
    listed = httpx.get(f"{base_url}/v1/speakers", headers=OWNER, timeout=30).json()
    # Listed by enrolment second, then id: two voices enrolled in one second come in id order.
    assert sorted(v["name"] for v in listed["data"]) == ["alice", "erin"]
