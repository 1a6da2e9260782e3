"""What travels on the Kafka topics: one versioned JSON message per job, and dead letters.

The job message carries only the job's id and delivery bookkeeping; the spec, the audio and the
result live in the job store and the blob store, so a message stays tiny and never goes stale.
Readers reject versions they do not know instead of guessing at a newer layout: a worker
dead-letters such a message with the reason and fails its job (docs/modes.md), so roll out new
workers before API replicas that write a newer version.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Self

from whisperx_api.errors import MessageError, UnsupportedMessageVersion

MESSAGE_VERSION = 1


class _Message:
    """Compact JSON in and out, for the message dataclasses below (their fields, `v` first)."""

    kind: ClassVar[str]

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON, `v` included."""
        return _dump(asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Inverse of `to_bytes`; raises `MessageError` on anything else."""
        names = tuple(f.name for f in fields(cls) if f.name != "v")  # type: ignore[arg-type]
        return cls(**_load(cls.kind, data, names))


@dataclass(frozen=True)
class JobMessage(_Message):
    """Asks a worker to run job `job_id`; one per job, and one more per retry."""

    kind: ClassVar[str] = "JobMessage"

    v: int = field(default=MESSAGE_VERSION, kw_only=True)
    job_id: str
    attempt: int
    submitted_at: float

    def __post_init__(self) -> None:
        _check_version(self.kind, self.v)
        _check_text(self.kind, "job_id", self.job_id)
        _check_count(self.kind, "attempt", self.attempt)
        _check_time(self.kind, "submitted_at", self.submitted_at)


@dataclass(frozen=True)
class DeadLetter(_Message):
    """A job that failed `attempts` times, parked on the dead-letter topic with the last reason.

    `attempts` is 0 for a job message no worker could read (`job_id` is then its key, or where
    it was on the topic when it had none); `reason` says what was wrong with it.
    """

    kind: ClassVar[str] = "DeadLetter"

    v: int = field(default=MESSAGE_VERSION, kw_only=True)
    job_id: str
    attempts: int
    reason: str
    failed_at: float

    def __post_init__(self) -> None:
        _check_version(self.kind, self.v)
        _check_text(self.kind, "job_id", self.job_id)
        _check_count(self.kind, "attempts", self.attempts, minimum=0)
        if not isinstance(self.reason, str):
            raise MessageError(f"{self.kind}.reason must be a string, got {self.reason!r}")
        _check_time(self.kind, "failed_at", self.failed_at)


def _dump(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def _load(kind: str, data: bytes, names: tuple[str, ...]) -> dict[str, Any]:
    """Decode, check the version first (a newer writer may change everything else), then fields."""
    try:
        decoded = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise MessageError(f"{kind} is not UTF-8 JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise MessageError(f"{kind} must be a JSON object, got {type(decoded).__name__}")
    _check_version(kind, decoded.get("v"))
    missing = [name for name in names if name not in decoded]
    if missing:
        raise MessageError(f"{kind} v{MESSAGE_VERSION} lacks {', '.join(missing)}")
    return {name: decoded[name] for name in names}


def _check_version(kind: str, version: object) -> None:
    if type(version) is not int or version != MESSAGE_VERSION:
        raise UnsupportedMessageVersion(
            f"unsupported {kind} version {version!r}: this build reads version {MESSAGE_VERSION}"
        )


def _check_text(kind: str, name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise MessageError(f"{kind}.{name} must be a non-empty string, got {value!r}")


def _check_count(kind: str, name: str, value: object, minimum: int = 1) -> None:
    if type(value) is not int or value < minimum:
        raise MessageError(f"{kind}.{name} must be an integer >= {minimum}, got {value!r}")


def _check_time(kind: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MessageError(f"{kind}.{name} must be a finite number of seconds, got {value!r}")
