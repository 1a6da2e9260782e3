"""The attempts policy: what becomes of a job whose attempt ended without a result.

Both worker kinds (the embedded pool and the Kafka worker) ask `settle` and only carry out its
verdict, so the same error ends the same way in both modes:

- a shutdown (the job was stopped, or the worker's thread was interrupted) puts the job back
  without counting the attempt: it was not the job's fault;
- bad input (`InvalidRequest`, including an unknown model) and a missing resource (`NotFound`,
  such as audio that is gone) fail the job at once: another attempt would end the same;
- anything else is retried, until the attempt that reaches `max_attempts` gives up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from whisperx_api.errors import (
    AttemptsExhausted,
    InvalidRequest,
    JobCancelled,
    NotFound,
    WhisperXApiError,
)

SHUTDOWN_REASON = "interrupted by a shutdown"
INTERNAL_ERROR = "internal error"


class Action(enum.Enum):
    """What the worker does with the job."""

    PUT_BACK = "put_back"  # queue it again, the attempt not counted
    RETRY = "retry"  # queue it again, the attempt counted
    REJECT = "reject"  # fail it now: its input is the problem
    GIVE_UP = "give_up"  # fail it now: out of attempts (Kafka: dead-letter it first)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision on one attempt (`attempt`, 1-based).

    `cause` is why the attempt ended, short (a dead letter's reason, a requeued job's note);
    `message` and `code` are what a failed job records and its waiting client gets.
    """

    action: Action
    attempt: int
    cause: str
    message: str
    code: str | None = None

    @property
    def fails(self) -> bool:
        """The job ends Failed."""
        return self.action in (Action.REJECT, Action.GIVE_UP)


def settle(error: BaseException, attempt: int, max_attempts: int) -> Verdict:
    """Decide the job's fate after its `attempt`-th attempt (1-based) ended with `error`."""
    if isinstance(error, JobCancelled) or not isinstance(error, Exception):
        return Verdict(Action.PUT_BACK, attempt, SHUTDOWN_REASON, SHUTDOWN_REASON)
    if isinstance(error, InvalidRequest | NotFound):
        return Verdict(Action.REJECT, attempt, error.message, error.message, error.code)
    cause = error.message if isinstance(error, WhisperXApiError) else INTERNAL_ERROR
    if attempt >= max_attempts:
        message = f"failed after {attempt} attempt(s): {cause}"
        return Verdict(Action.GIVE_UP, attempt, cause, message, AttemptsExhausted.code)
    return Verdict(Action.RETRY, attempt, cause, cause)
