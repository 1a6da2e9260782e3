"""A job's moves as pure functions: every one passes the one table of legal transitions."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from whisperx_api.domain.job import LEGAL_TRANSITIONS, JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transitions import (
    cancelled,
    claimed,
    completed,
    failed,
    lapsed,
    moved,
    progressed,
    renewed,
    requeued,
)
from whisperx_api.errors import IllegalMove

URL = "https://hooks.example.com/x"


def queued(webhook: str | None = None) -> JobRecord:
    spec = JobSpec(options=TranscriptionOptions(model="base"), webhook_url=webhook)
    return JobRecord(id="j", status=JobStatus.QUEUED, spec=spec, created_at=1.0)


def test_every_move_outside_the_table_is_refused() -> None:
    record = queued()
    for source in JobStatus:
        for target in JobStatus:
            at = JobRecord(id="j", status=source, spec=record.spec, created_at=1.0)
            if target in LEGAL_TRANSITIONS[source]:
                assert moved(at, target).status is target
            else:
                with pytest.raises(IllegalMove):
                    moved(at, target)


def test_a_claim_counts_an_attempt_under_a_lease_and_only_a_lapsed_one_is_taken_over() -> None:
    running = claimed(queued(), "w1", 30.0, now=100.0)
    assert (running.status, running.attempts, running.worker) == (JobStatus.PROCESSING, 1, "w1")
    assert (running.started_at, running.lease_until, running.progress) == (100.0, 130.0, 0.0)
    with pytest.raises(IllegalMove):
        claimed(running, "w2", 30.0, now=129.0)
    assert not lapsed(running, 129.0)
    assert lapsed(running, 130.0)
    taken = claimed(running, "w2", 30.0, now=131.0)
    assert (taken.attempts, taken.worker) == (2, "w2")
    forever = claimed(queued(), "w1", math.inf, now=100.0)
    assert not lapsed(forever, 10**12)
    assert lapsed(forever, math.inf)


@pytest.mark.parametrize(
    "move",
    [
        lambda r: renewed(r, "w2", 30.0, 101.0),
        lambda r: progressed(r, "w2", 0.5, "x"),
        lambda r: requeued(r, "w2", "x"),
        lambda r: completed(r, "w2", 101.0),
        lambda r: failed(r, "w2", "x", None, 101.0),
    ],
)
def test_only_the_holder_moves_a_processing_job(move: Callable[[JobRecord], JobRecord]) -> None:
    running = claimed(queued(), "w1", 30.0, now=100.0)
    with pytest.raises(IllegalMove):
        move(running)


def test_ends_clear_the_lease_and_attach_the_webhook_owed() -> None:
    running = claimed(queued(URL), "w1", 30.0, now=100.0)
    done = completed(progressed(running, "w1", 0.5, "so far"), "w1", 110.0)
    assert (done.status, done.progress, done.text_so_far, done.finished_at) == (
        JobStatus.COMPLETED,
        1.0,
        None,
        110.0,
    )
    assert (done.worker, done.lease_until) == (None, None)
    assert done.webhook is not None
    assert done.webhook.next_at == 110.0
    with pytest.raises(IllegalMove):
        completed(done, None, 111.0)
    gone = cancelled(queued(), 5.0)
    assert (gone.status, gone.webhook) == (JobStatus.CANCELLED, None)
    with pytest.raises(IllegalMove):
        cancelled(running, 5.0)


def test_a_queued_job_fails_unread_only_without_a_worker() -> None:
    unread = failed(queued(), None, "cannot read", "unreadable_job", 5.0)
    assert (unread.status, unread.error_code) == (JobStatus.FAILED, "unreadable_job")
    with pytest.raises(IllegalMove):
        failed(queued(), "w1", "x", None, 5.0)


def test_a_requeue_keeps_or_forgives_the_attempt() -> None:
    running = claimed(queued(), "w1", 30.0, now=100.0)
    again = requeued(running, "w1", "transient")
    assert (again.status, again.attempts, again.error, again.worker) == (
        JobStatus.QUEUED,
        1,
        "transient",
        None,
    )
    assert requeued(running, "w1", None, uncount=True).attempts == 0
