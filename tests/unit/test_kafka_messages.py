"""Queue messages survive the trip through bytes, and unknown or broken ones are refused."""

from __future__ import annotations

import json

import pytest

from whisperx_api.distributed.kafka_messages import MESSAGE_VERSION, DeadLetter, JobMessage
from whisperx_api.errors import MessageError, UnsupportedMessageVersion


def test_job_message_round_trip() -> None:
    message = JobMessage(job_id="job-1", attempt=2, submitted_at=1_700_000_000.25)
    assert message.v == MESSAGE_VERSION
    assert JobMessage.from_bytes(message.to_bytes()) == message
    assert json.loads(message.to_bytes()) == {
        "v": 1,
        "job_id": "job-1",
        "attempt": 2,
        "submitted_at": 1_700_000_000.25,
    }


def test_dead_letter_round_trip_keeps_unicode_reason() -> None:
    letter = DeadLetter(job_id="job-2", attempts=3, reason="décodage: échec", failed_at=12.5)
    assert DeadLetter.from_bytes(letter.to_bytes()) == letter


@pytest.mark.parametrize("version", [0, 2, "1", None, 1.0])
def test_unknown_versions_are_rejected_with_the_version_named(version: object) -> None:
    raw = json.dumps({"v": version, "job_id": "j", "attempt": 1, "submitted_at": 1.0}).encode()
    with pytest.raises(UnsupportedMessageVersion, match=f"version {version!r}"):
        JobMessage.from_bytes(raw)


def test_missing_version_is_rejected() -> None:
    raw = json.dumps({"job_id": "j", "attempt": 1, "submitted_at": 1.0}).encode()
    with pytest.raises(UnsupportedMessageVersion, match="version None"):
        JobMessage.from_bytes(raw)


def test_constructing_an_unknown_version_is_refused() -> None:
    with pytest.raises(UnsupportedMessageVersion):
        JobMessage(v=2, job_id="j", attempt=1, submitted_at=1.0)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'{"v": 1, "job_id": "j", "attempt": 1}',
        b'{"v": 1, "job_id": "", "attempt": 1, "submitted_at": 1.0}',
        b'{"v": 1, "job_id": "j", "attempt": 0, "submitted_at": 1.0}',
        b'{"v": 1, "job_id": "j", "attempt": true, "submitted_at": 1.0}',
        b'{"v": 1, "job_id": "j", "attempt": 1, "submitted_at": "now"}',
        b'{"v": 1, "job_id": "j", "attempt": 1, "submitted_at": NaN}',
    ],
)
def test_malformed_job_messages_are_rejected(raw: bytes) -> None:
    with pytest.raises(MessageError):
        JobMessage.from_bytes(raw)


def test_extra_fields_from_the_same_version_are_ignored() -> None:
    raw = b'{"v": 1, "job_id": "j", "attempt": 1, "submitted_at": 1, "trace": "x"}'
    assert JobMessage.from_bytes(raw) == JobMessage(job_id="j", attempt=1, submitted_at=1.0)


def test_dead_letter_needs_a_textual_reason() -> None:
    with pytest.raises(MessageError, match="reason"):
        DeadLetter.from_bytes(
            b'{"v": 1, "job_id": "j", "attempts": 3, "reason": 5, "failed_at": 1}'
        )
