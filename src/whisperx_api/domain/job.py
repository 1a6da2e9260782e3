"""A job: what was asked, where it stands, and the legal moves between states."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.options import SubtitleOptions, TranscriptionOptions

if TYPE_CHECKING:
    from whisperx_api.domain.webhook import WebhookState


class JobStatus(StrEnum):
    """Status names as clients see them (docs/jobs.md)."""

    QUEUED = "Queued"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        """No further transition is possible."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

# The one gate of every move (`domain.transitions`): a queued job is claimed, cancelled, or failed
# unread; a processing one ends, goes back in line, or is taken over once its lease lapsed.
LEGAL_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.QUEUED}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class ResultStyle(StrEnum):
    """Which family of endpoints submitted the job, which decides what `json` means."""

    OPENAI = "openai"
    JOBS = "jobs"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a worker needs to run a job and an API to render its result."""

    options: TranscriptionOptions
    response_format: OutputFormat = OutputFormat.JSON
    subtitles: SubtitleOptions = field(default_factory=SubtitleOptions)
    style: ResultStyle = ResultStyle.OPENAI
    owner: str | None = None
    streamed: bool = False  # the client reads the text as it is decoded (`stream=true`)
    webhook_url: str | None = None  # told when the job ends


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored."""

    id: str
    status: JobStatus
    spec: JobSpec
    created_at: float
    attempts: int = 0
    progress: float | None = None
    text_so_far: str | None = None  # while processing: the transcript text decoded so far
    error: str | None = None
    error_code: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    webhook: WebhookState | None = None  # set when a job with a webhook_url ends
    # While processing: the worker that holds the job; once completed, the fetch sending its
    # result (`transitions.taken`)...
    worker: str | None = None
    lease_until: float | None = None  # ...and until when, unless renewed (inf: for its lifetime)
