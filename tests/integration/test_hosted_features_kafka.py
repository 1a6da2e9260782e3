"""`audio_url` and known speakers in `MODE=kafka` (Tansu + moto): the API replica downloads the
audio (workers need no network), and the reference voices reach the worker inside the job's
stored spec."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.audio import DATA
from tests.distributed_stack import KEY, Stack
from tests.job_client import api_client, wait_for
from tests.kafka_broker import kafka_bootstrap
from tests.known_voices import audio, correctly_named, cut, reference_turns, truth, wav_data_url
from tests.s3_server import s3_endpoint
from tests.shared_stack import shared_stack
from tests.url_server import Routes, serving
from tests.wer import normalized_wer
from whisperx_api.domain.speakers import Diarization, SpeakerTurn

__all__ = ["kafka_bootstrap", "s3_endpoint", "shared_stack"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.slow

JOB_SECONDS = 300


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    """The session's shared deployment (tests/shared_stack.py): it allows downloads from
    loopback, where the test's file server listens."""
    return shared_stack


def test_audio_url_is_downloaded_by_the_api_replica(stack: Stack) -> None:
    routes = Routes(bodies={"/speech.flac": ((DATA / "en_espeak.flac").read_bytes(), "audio/flac")})
    with serving(routes) as files, api_client(stack.apis[0], KEY) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            data={"audio_url": f"{files}/speech.flac"},
            timeout=JOB_SECONDS,
        )
    assert response.status_code == 200, response.text
    reference = (DATA / "en_espeak.txt").read_text()
    assert normalized_wer(reference, response.json()["text"]) <= 0.10
    assert routes.hits == ["/speech.flac"]


def test_known_speakers_reach_the_worker(stack: Stack) -> None:
    source, turns = audio("conv2"), truth("conv2")
    refs = reference_turns(turns)
    names = sorted(refs)
    fields: dict[str, Any] = {
        "diarize": "true",
        "response_format": "diarized_json",
        "async": "true",
        "known_speaker_names[]": names,
        "known_speaker_references[]": [wav_data_url(cut(source, refs[n])) for n in names],
    }
    with api_client(stack.apis[0], KEY) as client, (DATA / "conv2.flac").open("rb") as f:
        accepted = client.post(
            "/v1/audio/transcriptions", files={"file": ("conv2.flac", f)}, data=fields
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]

        def finished() -> str | None:
            state = str(client.get(f"/transcription/{job_id}").json()["status"])
            return state if state in ("Completed", "Failed") else None

        assert wait_for(finished, f"job {job_id}", JOB_SECONDS, 0.5) == "Completed"
        body = client.get(f"/transcription/{job_id}/result").json()
    segments = body["segments"]
    hypothesis = Diarization(
        turns=tuple(SpeakerTurn(s["start"], s["end"], s["speaker"]) for s in segments)
    )
    assert {s["speaker"] for s in segments} == set(names)
    assert correctly_named(hypothesis, turns, excluded=list(refs.values())) >= 0.9
    sample = fields["known_speaker_references[]"][0][200:280]
    for log in [w.log() for w in stack.workers] + [a.log() for a in stack.apis]:
        assert sample not in log  # the references are never logged


def test_cleanup_reaches_the_kafka_worker(stack: Stack) -> None:
    """`replacements` and `redact[]` ride in the stored spec; the worker applies them."""
    fields: dict[str, Any] = {
        "model": "base",  # tiny.en skips the phone number's sentence
        "async": "true",
        "response_format": "verbose_json",
        "redact[]": ["card_number", "phone"],
        "replacements": '{"northwind": "Northwind Ltd"}',
    }
    with api_client(stack.apis[0], KEY) as client, (DATA / "billing_call.flac").open("rb") as f:
        accepted = client.post(
            "/v1/audio/transcriptions", files={"file": ("call.flac", f)}, data=fields
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]

        def finished() -> str | None:
            state = str(client.get(f"/transcription/{job_id}").json()["status"])
            return state if state in ("Completed", "Failed") else None

        assert wait_for(finished, f"job {job_id}", JOB_SECONDS, 0.5) == "Completed"
        body = client.get(f"/transcription/{job_id}/result").json()
    shown = " ".join([body["text"], *(s["text"] for s in body["segments"])])
    assert not re.search(r"\d(?:[\s.,()/-]{0,3}\d){6,}", shown), shown
    assert "[CARD_NUMBER]" in body["text"]
    assert "[PHONE]" in body["text"]
    assert "Northwind Ltd billing" in body["text"]
