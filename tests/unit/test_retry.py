"""The attempts policy: every verdict `settle` can give, and where each boundary lies."""

from __future__ import annotations

import asyncio

import pytest

from whisperx_api.errors import (
    AttemptsExhausted,
    AudioTooLong,
    BackendError,
    Conflict,
    InvalidAudio,
    InvalidRequest,
    JobCancelled,
    MissingExtra,
    ModelNotFound,
    NotFound,
    StorageError,
    UnsupportedParameter,
    WorkerLost,
)
from whisperx_api.jobs.retry import INTERNAL_ERROR, SHUTDOWN_REASON, Action, Verdict, settle


@pytest.mark.parametrize(
    "error",
    [
        JobCancelled("stopped"),
        KeyboardInterrupt(),
        asyncio.CancelledError(),
        SystemExit(1),
    ],
    ids=lambda error: type(error).__name__,
)
@pytest.mark.parametrize("attempt", [1, 3])
def test_a_shutdown_puts_the_job_back_uncounted_even_on_the_last_attempt(
    error: BaseException, attempt: int
) -> None:
    verdict = settle(error, attempt, max_attempts=3)
    assert verdict == Verdict(Action.PUT_BACK, attempt, SHUTDOWN_REASON, SHUTDOWN_REASON)
    assert not verdict.fails


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("Invalid 'temperature': too hot", param="temperature"),
        InvalidAudio("The file is not audio."),
        AudioTooLong("The audio is 3h long; the limit is 1h."),
        ModelNotFound("The model 'large-v9' does not exist."),
        UnsupportedParameter("No diarization here.", param="diarize"),
        MissingExtra("Word alignment", "alignment"),
        NotFound("No audio stored for job 'j'."),
    ],
    ids=lambda error: type(error).__name__,
)
def test_bad_input_or_a_missing_resource_fails_at_once_with_its_own_code(
    error: InvalidRequest | NotFound,
) -> None:
    verdict = settle(error, 1, max_attempts=3)
    assert verdict == Verdict(Action.REJECT, 1, error.message, error.message, error.code)
    assert verdict.fails


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (
            BackendError("The model 'base' could not be loaded."),
            "The model 'base' could not be loaded.",
        ),
        (StorageError("Object storage is unreachable."), "Object storage is unreachable."),
        (Conflict("Model 'base' is in use."), "Model 'base' is in use."),
        (WorkerLost(), "its worker stopped before finishing it"),
        (RuntimeError("a bug, with details nobody outside should read"), INTERNAL_ERROR),
    ],
    ids=lambda value: type(value).__name__,
)
def test_other_failures_are_retried_until_the_last_attempt_gives_up(
    error: Exception, cause: str
) -> None:
    for attempt in (1, 2):
        assert settle(error, attempt, max_attempts=3) == Verdict(
            Action.RETRY, attempt, cause, cause
        )
    for attempt in (3, 4):
        verdict = settle(error, attempt, max_attempts=3)
        message = f"failed after {attempt} attempt(s): {cause}"
        assert verdict == Verdict(Action.GIVE_UP, attempt, cause, message, AttemptsExhausted.code)
        assert verdict.fails


def test_a_single_allowed_attempt_gives_up_on_the_first_failure() -> None:
    assert settle(BackendError("boom"), 1, max_attempts=1).action is Action.GIVE_UP


def test_an_attempt_that_never_ran_is_not_out_of_attempts() -> None:
    """The Kafka worker asks about the attempt before the one it just claimed (0 for a new job)."""
    assert settle(WorkerLost(), 0, max_attempts=1).action is Action.RETRY
