"""`multichannel` in `MODE=kafka` (Tansu + moto): the option and the channel names ride in the
job's spec in the S3 store, the Kafka worker transcribes each channel on its own, and the
channels and warnings survive the stored result, in both endpoint families."""

from __future__ import annotations

from typing import Any

import pytest

from tests.audio import DATA
from tests.distributed_stack import KEY, Stack
from tests.job_client import api_client, wait_for
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint
from tests.shared_stack import shared_stack

__all__ = ["kafka_bootstrap", "s3_endpoint", "shared_stack"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.slow

JOB_SECONDS = 300
PARTIES = ["alice", "erin"]


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    """The session's shared deployment (tests/shared_stack.py)."""
    return shared_stack


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("/v1/audio/transcriptions", {"async": "true", "response_format": "diarized_json"}),
        ("/transcription", {"sync": "false", "response_format": "json"}),
    ],
)
def test_each_channel_is_transcribed_by_the_kafka_worker(
    stack: Stack, url: str, fields: dict[str, Any]
) -> None:
    data = {**fields, "model": "base", "multichannel": "true", "channel_names[]": PARTIES}
    with api_client(stack.apis[0], KEY) as client:
        content = (DATA / "conv2_stereo.flac").read_bytes()
        accepted = client.post(url, files={"file": ("call.flac", content)}, data=data)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]

        def finished() -> str | None:
            state = str(client.get(f"/transcription/{job_id}").json()["status"])
            return state if state in ("Completed", "Failed") else None

        assert wait_for(finished, f"job {job_id}", JOB_SECONDS, 0.5) == "Completed"
        body = client.get(f"/transcription/{job_id}/result").json()
    segments = body["segments"]
    assert {(s["channel"], s["speaker"]) for s in segments} == {(0, "alice"), (1, "erin")}
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)


def test_a_name_count_that_does_not_match_is_refused_by_the_api_replica(stack: Stack) -> None:
    with api_client(stack.apis[0], KEY) as client:
        content = (DATA / "conv2_stereo.flac").read_bytes()
        response = client.post(
            "/transcription",
            files={"file": ("call.flac", content)},
            data={"multichannel": "true", "channel_names[]": ["only-one"]},
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "channel_names"
