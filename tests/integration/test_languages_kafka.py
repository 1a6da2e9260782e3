"""Languages and warnings in `MODE=kafka` (Tansu + moto): the worker runs the same pipeline, and
each segment's language and the warnings reach the client through the S3 job store, on both
endpoint families."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.audio import DATA
from tests.distributed_stack import KEY, Stack, deployed
from tests.job_client import api_client, wait_for
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint

__all__ = ["kafka_bootstrap", "s3_endpoint"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.slow

JOB_SECONDS = 300
SENTENCES: list[dict[str, Any]] = json.loads((DATA / "languages.json").read_text())["sentences"]


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with deployed(
        kafka_bootstrap,
        s3_endpoint,
        tmp_path_factory.mktemp("languages-kafka"),
        apis=1,
        workers=1,
        WHISPER__MODEL="base",  # multilingual: the stack's default is English-only
    ) as running:
        yield running


def spoken(segments: list[dict[str, Any]]) -> set[str]:
    return {segment["language"] for segment in segments}


def test_languages_and_warnings_come_back_from_the_worker(stack: Stack) -> None:
    audio = (DATA / "languages.flac").read_bytes()
    with api_client(stack.apis[0], KEY) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("languages.flac", audio)},
            data={"languages[]": ["en", "de", "fr", "es"], "response_format": "verbose_json"},
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
            data={"languages": "en,de,fr,es", "response_format": "json"},
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
