"""Languages and warnings in `MODE=kafka` (Tansu + moto): the worker runs the same pipeline, and
each segment's language and the warnings reach the client through the S3 job store, on both
endpoint families. It runs on the session's shared deployment (tests/shared_stack.py), whose
default model is English-only, so each request asks for the multilingual base."""

from __future__ import annotations

import json
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
SENTENCES: list[dict[str, Any]] = json.loads((DATA / "languages.json").read_text())["sentences"]


MODEL = "base"  # multilingual: the shared deployment's default is English-only


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    """The session's shared deployment (tests/shared_stack.py)."""
    return shared_stack


def spoken(segments: list[dict[str, Any]]) -> set[str]:
    return {segment["language"] for segment in segments}


def test_languages_and_warnings_come_back_from_the_worker(stack: Stack) -> None:
    audio = (DATA / "languages.flac").read_bytes()
    with api_client(stack.apis[0], KEY) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("languages.flac", audio)},
            data={
                "model": MODEL,
                "languages[]": ["en", "de", "fr", "es"],
                "response_format": "verbose_json",
            },
            timeout=JOB_SECONDS,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert spoken(body["segments"]) == {"en", "de", "fr", "es"}
        codes = {w["code"] for w in body["warnings"]}
        assert "language_switch" in codes
        assert all(set(w) == {"code", "message", "start", "end"} for w in body["warnings"])

        submitted = client.post(
            "/transcription",
            files={"file": ("languages.flac", audio)},
            data={"model": MODEL, "languages": "en,de,fr,es", "response_format": "json"},
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]

        def completed() -> bool | None:
            status = client.get(f"/transcription/{job_id}").json()["status"]
            return True if status == "Completed" else None

        wait_for(completed, f"job {job_id} to complete", JOB_SECONDS)
        result = client.get(f"/transcription/{job_id}/result").json()
    assert spoken(result["segments"]) == {"en", "de", "fr", "es"}
    assert result["language"] == body["language"]
